"""Shared fixtures: a project whose overlays a test writes inline, next to the real chart and schema,
and the real schema check (kubeconform and the CRDs)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from generator import kubeconform
from generator.check import SchemaCheck
from generator.crds import SchemaSources
from generator.project import Project
from helpers import REPO, ProjectFactory, crd_dir

# Hypothesis checks laws, not speed: on a loaded CI machine its timing health checks would be noise.
# `make test` runs the "ci" profile: derandomized (the examples follow from the test's code) and no
# example database, so one commit gives one result. `make fuzz` runs "fuzz": fresh examples every
# run, remembered in .hypothesis/; turn each failure it finds into an @example of the test.
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", derandomize=True, database=None, deadline=None, suppress_health_check=_QUIET,
                          print_blob=True)
settings.register_profile("fuzz", deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.load_profile(os.environ.get("LLMPACK_HYPOTHESIS_PROFILE", "ci"))


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
        return Project(tmp_path, REPO / "charts/kserve-multinode", REPO / "schemas/values.schema.json")

    return factory


@pytest.fixture(scope="session")
def schema_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schema-cache")


@pytest.fixture
def schema_check(schema_cache: Path) -> SchemaCheck:
    """The real kubeconform (built by `make tools`) with the real CRDs; missing tools fail the test."""
    kubeconform.find(REPO)   # fails the test at once when `make tools` has not run
    return SchemaCheck(SchemaSources((crd_dir(),), schema_cache), (REPO,))
