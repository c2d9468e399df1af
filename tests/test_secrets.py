"""A Hugging Face token or a password never reaches the output, the logs or an error message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, crd_dir

TOKEN = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"
PASSWORD = "correct-horse-battery-staple"
LEAKS = re.compile(re.escape(TOKEN) + "|" + re.escape(PASSWORD) + r"|hf_[A-Za-z]{34}")

PLACES = [
    ("env-value", f"model:\n  env:\n    - {{name: EXTRA, value: {TOKEN}}}\n"),
    ("env-named-token", f"model:\n  env:\n    - {{name: HF_TOKEN, value: {PASSWORD}}}\n"),
    ("token-secret-literal", f"download: {{tokenSecret: {TOKEN}}}\n"),
    ("label", f"labels: {{team: {TOKEN}}}\n"),
    ("password-key", f"labels: {{password: {PASSWORD}}}\n"),
    ("model-id", f"model: {{id: {TOKEN}}}\n"),
    ("arg", f"model: {{args: [--api-key={TOKEN}]}}\n"),
    ("key", f"labels: {{{TOKEN}: x}}\n"),
]


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "LLMPACK_CRD_DIR": str(crd_dir())}
    return subprocess.run([sys.executable, "-m", "generator", "-C", str(root), *args], capture_output=True,
                          text=True, env=env)


@pytest.mark.parametrize("values", [p[1] for p in PLACES], ids=[p[0] for p in PLACES])
def test_secrets_in_values_are_refused_without_being_echoed(tmp_path: Path, values: str) -> None:
    folder = tmp_path / "overlays" / "test"
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(values)
    for command in (["render", "--env", "test"], ["validate", "--env", "test"], ["explain", "--env", "test"],
                    ["plan", "--env", "test"]):
        done = run(tmp_path, *command)
        assert not LEAKS.search(done.stdout + done.stderr), (command, done.stdout + done.stderr)
        if command[0] != "explain":
            assert done.returncode == 1 and "overlays/test/values.yaml:" in done.stderr, done.stderr
    assert not (tmp_path / "rendered").exists()


def test_secret_on_the_command_line_is_refused_without_being_echoed(tmp_path: Path) -> None:
    (tmp_path / "overlays" / "test").mkdir(parents=True)
    (tmp_path / "overlays" / "test" / "values.yaml").write_text("")
    done = run(tmp_path, "render", "--env", "test", "--set", f"model.id={TOKEN}")
    assert done.returncode == 1 and "--set model.id at /model/id" in done.stderr
    assert not LEAKS.search(done.stdout + done.stderr)


def test_no_bundle_holds_a_token_or_a_secret_object() -> None:
    for folder in (REPO / "rendered", REPO / "tests" / "golden"):
        for path in folder.rglob("*"):
            if path.is_file():
                text = path.read_text()
                assert not LEAKS.search(text), path
                assert "kind: \"Secret\"" not in text, path
