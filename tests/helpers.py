"""Shared helpers for the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

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


class KubernetesLikeLoader(yaml.SafeLoader):
    """PyYAML's YAML 1.1 resolver plus y/n as booleans, as Kubernetes' parser reads them."""


KubernetesLikeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
KubernetesLikeLoader.add_constructor(
    "tag:yaml.org,2002:bool", lambda loader, node: loader.construct_scalar(node).lower() in ("y", "yes", "true", "on"))


def kubernetes_read(text: str) -> Any:
    """Read YAML as Kubernetes would (YAML 1.1 with y/n as booleans)."""
    return yaml.load(text, Loader=KubernetesLikeLoader)
