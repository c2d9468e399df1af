"""Golden bundles: the example environments render to exactly the files in tests/golden/.

Update after an intended change with `make golden`, then read the diff in git.
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

from generator.pipeline import build
from generator.project import Project

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
ENVS = sorted(p.name for p in (REPO / "overlays").iterdir() if p.is_dir())


@pytest.mark.parametrize("env", ENVS)
def test_example_environment_matches_golden_bundle(env: str) -> None:
    bundle = build(Project.at(REPO), env)
    produced = bundle.texts()
    folder = GOLDEN / env
    if os.environ.get("LLMPACK_UPDATE_GOLDEN"):
        shutil.rmtree(folder, ignore_errors=True)
        for name, text in produced.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    expected = {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}
    assert sorted(produced) == sorted(expected), "files differ; run `make golden` if the change is intended"
    diffs: list[str] = []
    for name in sorted(produced):
        if produced[name] != expected[name]:
            diffs += difflib.unified_diff(expected[name].splitlines(), produced[name].splitlines(),
                                          f"golden/{env}/{name}", f"rendered/{env}/{name}", lineterm="")
    assert not diffs, "rendered output differs from the golden bundle (`make golden` accepts it):\n" + \
        "\n".join(diffs[:200])
