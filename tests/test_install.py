"""llmpack as a platform team uses it: a wheel installed into a fresh virtualenv (no checkout of
llmpack anywhere in sight), `llmpack init` in an empty folder, render, check; and the GitHub
Actions workflow that `init` writes, its steps run for real against the example environments.

The installed tool finds its own way: CRDs from the Go module proxy into its cache, kubeconform
from its cache or built with Go on first use. Nothing here points it at this repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import __version__
from helpers import REPO

GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a clean copy of the working tree (a build/ folder would add stale files)."""
    dist, source = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("source") / "llmpack"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", ".tools", ".cache", "build", "dist",
                                                                 "rendered", "tests", "*.egg-info", "__pycache__"))
    built = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(source)], source)
    assert built.returncode == 0, built.stderr
    return next(dist.glob("llmpack-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel (and its pinned dependencies) installed."""
    folder = tmp_path_factory.mktemp("venv")
    assert run([sys.executable, "-m", "venv", str(folder)], folder).returncode == 0
    done = run([str(folder / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", "-c",
                str(REPO / "constraints.txt"), str(wheel)], folder)
    assert done.returncode == 0, done.stderr
    return folder


def user_env(venv: Path) -> dict[str, str]:
    """A user's shell: the virtualenv and Go on PATH, no llmpack settings, no kubeconform."""
    go = shutil.which("go")
    assert go, "these tests need Go, as llmpack builds kubeconform with it on first use"
    path = os.pathsep.join([str(venv / "bin"), str(Path(go).parent), "/usr/bin", "/bin"])
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "GOPATH", "GOCACHE", "GOMODCACHE", "GOPROXY",
                                                           "GOFLAGS", "XDG_CACHE_HOME", "TMPDIR")}
    return {**keep, **GIT, "PATH": path}


def test_the_wheel_carries_every_module_the_chart_the_schema_and_the_scaffold(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "generator").rglob("*.py")}
    assert modules <= names, f"not in the wheel (add the package to pyproject.toml): {sorted(modules - names)}"
    assert {"generator/data/chart/values.yaml", "generator/data/chart/templates/serving/inferenceservice.yaml",
            "generator/data/chart/models/llama-3-70b.json", "generator/data/schemas/values.schema.json",
            "generator/data/scaffold/.github/workflows/llmpack.yaml", "generator/data/scaffold/.gitignore",
            "generator/data/scaffold/overlays/prod/releases/llama3-8b.yaml"} <= names


def test_init_then_render_in_an_empty_folder(venv: Path, tmp_path: Path) -> None:
    env, llmpack = user_env(venv), str(venv / "bin/llmpack")
    repo = tmp_path / "my-gitops"
    repo.mkdir()
    created = run([llmpack, "init"], repo, env)
    assert created.returncode == 0, created.stderr
    assert (repo / ".llmpack/values.schema.json").read_bytes() == (REPO / "schemas/values.schema.json").read_bytes()
    rendered = run([llmpack, "render", "--env", "prod"], repo, env)
    assert rendered.returncode == 0, rendered.stderr
    assert "wrote rendered/prod/" in rendered.stdout
    assert "KServe 0.19.0 CRDs from github.com/kserve/kserve@v0.19.0 (sha256 pinned)" in rendered.stdout
    assert (repo / "rendered/prod/llama3-8b/serving/inferenceservice.yaml").is_file()
    elsewhere = run([llmpack, "-C", str(repo / "overlays"), "render", "--env", "dev", "-q"], tmp_path, env)
    assert elsewhere.returncode == 0 and (repo / "rendered/dev/kustomization.yaml").is_file(), elsewhere.stderr
    from_below = run([llmpack, "check"], repo / "overlays/prod/releases", env)
    assert from_below.returncode == 0 and "rendered/ is up to date and valid (2 environment(s))" in \
        from_below.stdout, from_below.stdout + from_below.stderr
    again = run([llmpack, "init"], repo, env)
    assert again.returncode == 2 and "nothing was written (--force overwrites them)" in again.stderr


def test_outside_a_project_says_how_to_make_one(venv: Path, tmp_path: Path) -> None:
    done = run([str(venv / "bin/llmpack"), "render", "--env", "prod"], tmp_path, user_env(venv))
    assert done.returncode == 2
    assert f"error: no llmpack project at {tmp_path}: no overlays/ folder there or above it. Create one with " \
        "`llmpack init`" in done.stderr


def workflow_steps() -> tuple[dict[str, str], list[dict[str, Any]]]:
    workflow = yaml.safe_load((REPO / "scaffold/.github/workflows/llmpack.yaml").read_text())
    return workflow["env"], workflow["jobs"]["check"]["steps"]


def test_the_ci_workflow_passes_for_every_example_environment(venv: Path, wheel: Path, tmp_path: Path) -> None:
    """This repository's overlays and rendered/ as a user's GitOps repository (no chart of its own),
    the workflow's `run` steps executed as GitHub would, with llmpack installed from the wheel."""
    origin, repo = tmp_path / "origin.git", tmp_path / "checkout"
    repo.mkdir()
    for folder in ("overlays", "rendered"):
        shutil.copytree(REPO / folder, repo / folder)
    env = {**user_env(venv), "LLMPACK": str(wheel)}
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"],
                    ["clone", "-q", "--bare", str(repo), str(origin)], ["remote", "add", "origin", str(origin)],
                    ["fetch", "-q", "origin"]):
        assert run(["git", *command], repo, env).returncode == 0
    defaults, steps = workflow_steps()
    ran = []
    for step in steps:
        if "run" not in step:
            assert step["uses"].split("@")[0] in ("actions/checkout", "actions/setup-python", "actions/setup-go")
            continue
        step_env = {**defaults, **env, "LLMPACK": str(wheel), **{k: str(v) for k, v in (step.get("env") or {}).items()}}
        step_env.update({"BASE_REF": "main", "PR_NUMBER": "1", "GH_TOKEN": "unused"})
        done = run(["bash", "-eo", "pipefail", "-c", step["run"]], repo, step_env)
        assert done.returncode == 0, f"{step['name']}: {done.stdout}{done.stderr}"
        ran.append(step["name"])
    assert ran == ["Install llmpack", "rendered/ is up to date and valid", "Review comment"]
    assert not (repo / "diff.md").read_text(), "nothing changed, so no review comment"


def test_the_workflow_installs_this_version() -> None:
    defaults, _ = workflow_steps()
    assert defaults["LLMPACK"] == "llmpack==@LLMPACK_VERSION@"
    from generator.scaffold import files

    assert f'LLMPACK: "llmpack=={__version__}"'.encode() in files()[".github/workflows/llmpack.yaml"]
