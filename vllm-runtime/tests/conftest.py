"""The `runtime` fixture: a Runtime (runtime_harness.py) in a short temp dir, always cleaned up.

Puts vllm-runtime/ on sys.path so the tests import llmpack_runtime as the image does.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime_harness import Runtime


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    root = Path(tempfile.mkdtemp(prefix="llmrt-", dir="/tmp"))
    rt = Runtime(root)
    try:
        yield rt
    finally:
        rt.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a Ray cluster run one after another on one test worker (`--dist loadgroup`):
    two clusters at once on a 2-core machine make both too slow to be trusted."""
    for item in items:
        if "runtime" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))
