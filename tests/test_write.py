"""rendered/ENV/ is replaced as a whole or not at all; a no-op render writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator.errors import ValuesError
from generator.pipeline import render_env
from generator.write import write
from helpers import ProjectFactory


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_failed_render_leaves_the_previous_bundle_untouched(make_project: ProjectFactory) -> None:
    project = make_project("workerSpec: {size: 1}\n")
    render_env(project, "test")
    out = project.root / "rendered" / "test"
    before = snapshot(out)
    (project.root / "overlays/test/values.yaml").write_text("name: Not_Valid\n")
    with pytest.raises(ValuesError):
        render_env(project, "test")
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["test"], "no temporary directory may be left"


def test_noop_render_writes_no_file(make_project: ProjectFactory) -> None:
    project = make_project("")
    changed = render_env(project, "test").changed
    out = project.root / "rendered" / "test"
    before = snapshot(out)
    changed_again = render_env(project, "test").changed
    assert changed and not changed_again
    assert snapshot(out) == before


def test_changed_render_replaces_every_file_and_drops_stale_ones(tmp_path: Path) -> None:
    write(tmp_path, "env", {"a/x.yaml": "1\n", "a/old.yaml": "old\n"})
    (tmp_path / "env" / "hand-edit.yaml").write_text("edited\n")
    assert write(tmp_path, "env", {"a/x.yaml": "2\n"})
    assert snapshot(tmp_path / "env").keys() == {"a/x.yaml"}
    assert (tmp_path / "env/a/x.yaml").read_text() == "2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env"]


def test_staging_left_by_a_killed_render_is_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".llmpack-env-999999999"
    (dead / "a").mkdir(parents=True)
    write(tmp_path, "env", {"a/x.yaml": "1\n"})
    assert not dead.exists()
    assert os.listdir(tmp_path) == ["env"]
