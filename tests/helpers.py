"""Shared helpers for the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import crds
from generator.pipeline import Bundle
from generator.project import Project
from generator.releases import RELEASES

REPO = Path(__file__).resolve().parent.parent

ProjectFactory = Callable[..., Project]


def crd_dir() -> Path:
    """The CRDs the tests validate against, got the way llmpack gets them: the folder in
    LLMPACK_CRD_DIR (make sets it to ../shared/crds when that exists), else the pinned files
    fetched from the Go module proxy into llmpack's cache (once; later runs find them there)."""
    explicit = os.environ.get("LLMPACK_CRD_DIR")
    return Path(explicit) if explicit else _fetched()


@functools.cache
def _fetched() -> Path:
    sources = crds.SchemaSources((), crds.default_cache(), crds.go_proxies())
    pinned = [*(release.crds for release in RELEASES.values()), *crds.GITOPS_CRDS]
    for item, result in crds.fetch_all(sources, pinned):
        if isinstance(result, Exception) and item.folder != "kserve/v0.18.1":   # 0.18.1: see kserve_release
            pytest.fail(f"cannot get the pinned {item.name} CRDs: {result}")
    return sources.fetched


def kserve_release(patch: str) -> Path:
    """The CRD folder of one KServe release; a test of a release whose CRDs no source here serves
    (0.18.1: the Go module proxy refuses it, GitHub is out of reach) is skipped, saying so."""
    folder = crd_dir() / "kserve" / f"v{patch}"
    if not folder.is_dir():
        pytest.skip(f"no CRDs of KServe {patch} here: the Go module proxy refuses github.com/kserve/kserve@v{patch} "
                    "and raw.githubusercontent.com is unreachable; give them with LLMPACK_CRD_DIR")
    return folder


class KubernetesLikeLoader(yaml.SafeLoader):
    """PyYAML's YAML 1.1 resolver plus y/n as booleans, as Kubernetes' parser reads them."""


KubernetesLikeLoader.add_implicit_resolver(  # type: ignore[no-untyped-call]
    "tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
KubernetesLikeLoader.add_constructor(
    "tag:yaml.org,2002:bool",
    lambda loader, node: str(loader.construct_scalar(node)).lower() in ("y", "yes", "true", "on"))  # type: ignore[arg-type]


def kubernetes_read(text: str) -> Any:
    """Read YAML as Kubernetes would (YAML 1.1 with y/n as booleans)."""
    return yaml.load(text, Loader=KubernetesLikeLoader)


def obj_at(bundle: Bundle, path: str) -> dict[str, Any]:
    """The object a bundle writes to `path` (below rendered/ENV/)."""
    found = next(f.obj for f in bundle.files if f.path == path)
    assert found is not None, f"{path} is not an object"
    return found
