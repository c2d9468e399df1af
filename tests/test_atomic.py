"""A render killed with SIGKILL at any moment leaves rendered/ENV/ complete (the previous bundle or
the new one, never a mix) and no temporary file in rendered/; the next render clears its staging."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from generator.pipeline import build
from generator.project import Project
from helpers import REPO

TRIALS = 100
RELEASES = 6


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}


def write_values(root: Path, size: str) -> None:
    (root / "overlays" / "test" / "values.yaml").write_text(f"pvc: {{size: {size}}}\n")


def test_sigkill_at_random_points_never_leaves_a_partial_bundle(tmp_path: Path) -> None:
    releases = tmp_path / "overlays" / "test" / "releases"
    releases.mkdir(parents=True)
    for index in range(RELEASES):
        (releases / f"r{index}.yaml").write_text(f"name: model-{index}\nmodel: {{storageUri: pvc://c{index}/m}}\n")
    project = Project.at(tmp_path)
    bundles = {}
    for size in ("50Gi", "60Gi"):
        write_values(tmp_path, size)
        bundles[size] = build(project, "test").texts()
    command = [sys.executable, "-m", "generator", "-C", str(tmp_path), "render", "--env", "test", "-q",
               "--no-crd-check"]
    env = {"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]}
    assert subprocess.run(command, env=env).returncode == 0     # the previous bundle: 60Gi
    started = time.monotonic()
    write_values(tmp_path, "50Gi")
    assert subprocess.run(command, env=env).returncode == 0
    duration = time.monotonic() - started
    current = "50Gi"
    rng = random.Random(20261127)
    out = tmp_path / "rendered"
    killed_after_swap = 0
    for _ in range(TRIALS):
        wanted = "60Gi" if current == "50Gi" else "50Gi"
        write_values(tmp_path, wanted)
        process = subprocess.Popen(command, env=env)
        time.sleep(rng.uniform(0, duration * 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        found = snapshot(out / "test")
        assert found in (bundles[current], bundles[wanted]), "a killed render left a partial bundle"
        assert sorted(p.name for p in out.iterdir()) == ["test"], "a killed render left files in rendered/"
        if found == bundles[wanted]:
            killed_after_swap += 1
            current = wanted
    write_values(tmp_path, current)
    assert subprocess.run(command, env=env).returncode == 0
    staging = tmp_path / ".cache" / "llmpack" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == [], "the next render clears the staging area"
    assert killed_after_swap < TRIALS, "some kills must land before the new bundle is complete"
