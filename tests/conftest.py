"""Shared fixtures: a project whose overlays a test writes inline, next to the real chart and schema."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.pipeline import Project

REPO = Path(__file__).resolve().parent.parent

ProjectFactory = Callable[..., Project]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """make_project(values="...", releases={"a": "..."}, env="test") -> a Project in tmp_path.

    Values are YAML text (dedented); the chart and schema are the repository's own.
    """

    def factory(values: str | None = "", releases: dict[str, str] | None = None, env: str = "test") -> Project:
        folder = tmp_path / "overlays" / env
        folder.mkdir(parents=True, exist_ok=True)
        if values is not None:
            (folder / "values.yaml").write_text(textwrap.dedent(values))
        for name, text in (releases or {}).items():
            (folder / "releases").mkdir(exist_ok=True)
            (folder / "releases" / f"{name}.yaml").write_text(textwrap.dedent(text))
        return Project(tmp_path, chart_dir=str(REPO / "charts/kserve-multinode"),
                       schema=str(REPO / "schemas/values.schema.json"))

    return factory
