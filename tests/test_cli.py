"""The command line as users run it: exit codes, messages without tracebacks, help that teaches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import ProjectFactory, crd_dir

REPO = Path(__file__).resolve().parent.parent


def llmpack(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: kubeconform from llmpack's .tools/bin, CRDs from LLMPACK_CRD_DIR."""
    return subprocess.run([sys.executable, "-m", "generator", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLMPACK_CRD_DIR": str(crd_dir())})


def test_render_writes_the_bundle_and_reports_the_topology(make_project: ProjectFactory) -> None:
    project = make_project("")
    done = llmpack("-C", str(project.root), "render", "--env", "test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == ("huggingface-llama3: huggingface-llama3 in llm-serving, KServe 0.19 "
                                           "(kserve): 2 pod(s) x 1 GPU = 2 nvidia.com/gpu")
    assert done.stdout.splitlines()[-1] == "wrote rendered/test/ (11 files)"
    again = llmpack("-C", str(project.root), "render", "--env", "test", "-q")
    assert again.returncode == 0 and again.stdout == ""


def test_invalid_values_exit_1_with_located_message_and_no_traceback(make_project: ProjectFactory) -> None:
    project = make_project("pvc: {create: yes}\n")
    done = llmpack("-C", str(project.root), "render", "--env", "test")
    assert done.returncode == 1
    assert done.stderr == ("error: invalid values for env test: overlays/test/values.yaml:1 at /pvc/create: "
                           "expected true or false, got string \"yes\"; write true or false (YAML 1.2 reads "
                           "yes/no/on/off as text)\n")


def test_usage_errors_exit_2(make_project: ProjectFactory) -> None:
    project = make_project("")
    unknown_env = llmpack("-C", str(project.root), "render", "--env", "nope")
    assert unknown_env.returncode == 2
    assert unknown_env.stderr == "error: unknown environment 'nope': no folder overlays/nope (environments: test)\n"
    assert llmpack("render").returncode == 2                      # --env missing
    assert llmpack("frobnicate").returncode == 2
    bad_set = llmpack("-C", str(project.root), "render", "--env", "test", "--set", "novalue")
    assert bad_set.returncode == 2 and "expected KEY=VALUE" in bad_set.stderr


def test_the_schema_check_flag_keeps_its_earlier_name(make_project: ProjectFactory) -> None:
    project = make_project("")
    now, before = (llmpack("-C", str(project.root), "render", "--env", "test", "--stdout", flag)
                   for flag in ("--no-crd-check", "--skip-kubeconform"))
    assert now.returncode == before.returncode == 0 and now.stdout == before.stdout
    assert "not validated against the Kubernetes and CRD schemas" in before.stderr
    assert "--skip-kubeconform" not in llmpack("render", "--help").stdout


def test_help_teaches_the_layers_and_examples() -> None:
    done = llmpack("--help")
    assert done.returncode == 0
    for words in ("overlays/ENV/releases/RELEASE.yaml", "null deletes", "llmpack render --env prod", "explain"):
        assert words in done.stdout


def line_of(path: str, text: str) -> int:
    return (REPO / path).read_text().splitlines().index(text) + 1


def test_explain_names_the_file_that_won() -> None:
    done = llmpack("explain", "--env", "prod", "--release", "llama3-70b", "pvc.size")
    assert done.returncode == 0, done.stderr
    defaults, release = "charts/kserve-multinode/values.yaml", "overlays/prod/releases/llama3-70b.yaml"
    assert done.stdout == (f'release llama3-70b, /pvc/size = "300Gi"\n'
                           f'  {defaults}:{line_of(defaults, "  size: 50Gi")}: set "50Gi"\n'
                           f'  {release}:{line_of(release, "  size: 300Gi")}: set "300Gi"\n')


def test_a_crd_folder_that_is_not_there_is_a_usage_error(make_project: ProjectFactory, tmp_path: Path) -> None:
    """A mistyped --crd-dir is said, not skipped for CRDs from elsewhere."""
    project = make_project("")
    (tmp_path / "a-file").write_text("")
    for folder, said in [(tmp_path / "nope", "no such folder"), (tmp_path / "a-file", "is a file")]:
        done = llmpack("-C", str(project.root), "render", "--env", "test", "--crd-dir", str(folder))
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"error: --crd-dir {folder}: {said}; give a folder of CRD files"), done.stderr
        assert not (project.root / "rendered").exists()
