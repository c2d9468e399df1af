"""Deterministic benchmark inputs: llmpack projects and the peer chart's values files.

Release i is the seed's example (chart defaults) with its own name and claim, so every
release renders the four objects: PVC, download Job, ServingRuntime, InferenceService.
llmpack gets one environment of N release files; helm gets the same N values files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

NAMESPACE = "llm-bench"


def release_name(index: int) -> str:
    return f"r{index:04d}"


def release_values(index: int) -> str:
    """The values of release i, valid for llmpack's chart and the peer chart alike."""
    return (f"name: model-{index:04d}\n"
            f"namespace: {NAMESPACE}\n"
            f"model:\n  storageUri: pvc://claim-{index:04d}/models/m\n")


def single(root: Path, env: str = "one") -> Path:
    """A project whose environment is one release: overlays/ENV/values.yaml alone."""
    folder = root / "overlays" / env
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(release_values(0))
    return root


def fleet(root: Path, releases: int, env: str = "fleet") -> Path:
    """A project whose environment has `releases` release files."""
    folder = root / "overlays" / env / "releases"
    folder.mkdir(parents=True)
    (root / "overlays" / env / "values.yaml").write_text(f"namespace: {NAMESPACE}\n")
    for index in range(releases):
        (folder / f"{release_name(index)}.yaml").write_text(release_values(index))
    return root


def helm_values(folder: Path, releases: int) -> list[tuple[str, Path]]:
    """(release name, values file) for each of `releases` helm template calls."""
    folder.mkdir(parents=True)
    found = []
    for index in range(releases):
        path = folder / f"{release_name(index)}.yaml"
        path.write_text(release_values(index))
        found.append((release_name(index), path))
    return found


def example(root: Path, repo: Path, env: str = "prod") -> Path:
    """A copy of the repository's example environment (uses the chart shipped with llmpack)."""
    shutil.copytree(repo / "overlays" / env, root / "overlays" / env)
    return root
