"""`null` deletes a key, for every key of the chart defaults: the result is a bundle without the key
or an error naming the layer (file or flag) and key, never a template error or a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import CheckError, LoadError, ValuesError
from generator.load import load_file
from generator.pipeline import build
from generator.project import Extras, Project
from helpers import REPO

DEFAULTS = load_file(REPO / "charts/kserve-multinode/values.yaml")
KEYS = sorted(".".join(map(str, path)) for path in DEFAULTS.lines if path and all(isinstance(p, str) for p in path))
# Where the key matters: dev (kserve target), staging (Flux), prod (Argo CD, two releases), and raw pods.
CASES = [("dev", ()), ("staging", ()), ("prod", ()), ("dev", ("target=raw",)),
         ("dev", ("runtime.flavor=llmpack", "runtime.image=registry.example/rt:1"))]


def test_every_default_key_is_covered() -> None:
    assert len(KEYS) > 80 and "scheduling.nodeSelector" in KEYS and "gitops.flux.branch" in KEYS


@pytest.mark.parametrize(("env", "sets"), CASES, ids=["-".join((env, *sets)) for env, sets in CASES])
def test_null_for_every_default_key_renders_or_names_the_key(env: str, sets: tuple[str, ...]) -> None:
    project = Project.at(REPO)
    for key in KEYS:
        flag = f"{key}=null"
        try:
            bundle = build(project, env, Extras(sets=(*sets, flag)))
        except ValuesError as err:
            assert err.problems and all(p.location is not None for p in err.problems), (key, str(err))
            assert any((p.location is not None and p.location.source == f"--set {key}") or
                       ".".join(map(str, p.path)).startswith(key.rsplit(".", 1)[0]) for p in err.problems), \
                (key, str(err))
        except (LoadError, CheckError) as err:
            pytest.fail(f"--set {flag}: {err}")
        else:
            assert bundle.files, key


def test_deleting_scheduling_renders_pods_without_it(tmp_path: Path) -> None:
    for key in ("scheduling", "scheduling.nodeSelector", "scheduling.tolerations"):
        bundle = build(Project.at(REPO), "dev", Extras(sets=(f"{key}=null",)))
        assert "nodeSelector:" not in bundle.texts()["llama3-8b-dev/serving/inferenceservice.yaml"]
