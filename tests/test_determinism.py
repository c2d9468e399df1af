"""Byte-identical output across runs, hash seeds and input key order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from generator.pipeline import build
from helpers import ProjectFactory, crd_dir

REPO = Path(__file__).resolve().parent.parent


def render_to_stdout(seed: str, **extra: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed, "LLMPACK_CRD_DIR": str(crd_dir()), **extra}
    done = subprocess.run([sys.executable, "-m", "generator", "-C", str(REPO), "render", "--env", "prod",
                           "--stdout"], capture_output=True, text=True, env=env, check=True)
    return done.stdout


def test_output_is_identical_across_hash_seeds() -> None:
    outputs = {render_to_stdout(seed) for seed in ("0", "1", "4242", "random")}
    assert len(outputs) == 1 and next(iter(outputs)).count("kind: ") >= 8


def test_output_is_identical_across_locales_and_time_zones() -> None:
    reference = render_to_stdout("0")
    for extra in ({"LC_ALL": "C", "LANG": "C"}, {"LC_ALL": "C.UTF-8"}, {"TZ": "Pacific/Chatham"},
                  {"TZ": "Etc/GMT+12", "LC_ALL": "POSIX"}, {"PYTHONUTF8": "0", "LANG": "C"}):
        assert render_to_stdout("7", **extra) == reference, extra


def test_output_does_not_depend_on_key_order_in_values(make_project: ProjectFactory) -> None:
    forward = build(make_project("labels: {a: x, b: y}\npvc: {size: 60Gi, storageClassName: fast}\n"), "test")
    backward = build(make_project("pvc: {storageClassName: fast, size: 60Gi}\nlabels: {b: y, a: x}\n"), "test")
    assert forward.texts() == backward.texts()
