"""Shared helpers for the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.pipeline import Project

REPO = Path(__file__).resolve().parent.parent
SHARED_CRDS = REPO.parent / "shared" / "crds"

ProjectFactory = Callable[..., Project]


def crd_dir() -> Path:
    """The CRDs the tests validate against: LLMPACK_CRD_DIR (set by make), else ../shared/crds."""
    folder = Path(os.environ.get("LLMPACK_CRD_DIR") or SHARED_CRDS)
    if not (folder / "kserve").is_dir():
        pytest.fail(f"no CRDs at {folder}: run the tests with `make test`, or set LLMPACK_CRD_DIR")
    return folder
