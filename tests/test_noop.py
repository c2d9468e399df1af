"""A no-op render is answered from the stamp of the last render only when nothing it read changed:
each kind of input (values, release files, -f and --set, the chart, the values schema, a CRD byte,
kubeconform, llmpack's code and version, the environment) and each kind of damage to rendered/
makes the next render a full one. The stamp's answer is what the full render printed."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import generator
from generator import cli, pipeline, stamp
from generator.digests import SETTLED_NS
from helpers import REPO, crd_dir

pytestmark = pytest.mark.xdist_group("noop")
KINDS = ("values", "releases", "extra", "set", "chart", "schema", "crd", "tool", "version", "code", "environ",
         "edited", "deleted", "added", "leftover", "young", "during", "printed", "stdout", "imports")


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One project per test, all written first and then left to settle (older than SETTLED_NS), as a
    project is when someone renders it again."""
    base = tmp_path_factory.mktemp("noop")
    roots = {}
    for kind in KINDS:
        root = roots[kind] = base / kind
        (root / "overlays" / "test").mkdir(parents=True)
        (root / "overlays" / "test" / "values.yaml").write_text("workerSpec: {size: 1}\n")
    (roots["releases"] / "overlays/test/releases").mkdir()
    (roots["releases"] / "overlays/test/releases/a.yaml").write_text("name: model-a\n")
    (roots["extra"] / "extra.yaml").write_text("pvc: {size: 60Gi}\n")
    for kind in ("chart", "schema"):
        shutil.copytree(REPO / "charts", roots[kind] / "charts")
        shutil.copytree(REPO / "schemas", roots[kind] / "schemas")
    shutil.copytree(crd_dir() / "kserve" / "v0.20.0", roots["crd"] / "crds" / "kserve" / "v0.20.0")
    (roots["crd"] / "overlays" / "test" / "values.yaml").write_text('kserve: {version: "0.20"}\n')
    (roots["code"] / "llmpack_plugin.py").write_text("VALUE = 1\n")
    for kind in ("crd", "tool"):
        script = roots[kind] / "kubeconform"
        script.write_text(f'#!/bin/sh\necho run >> "{roots[kind] / "runs.log"}"\n'
                          f'exec "{REPO / ".tools/bin/kubeconform-v0.7.0"}" "$@"\n')
        script.chmod(0o755)
    time.sleep(SETTLED_NS / 1e9 + 0.2)
    return roots


@pytest.fixture
def full(monkeypatch: pytest.MonkeyPatch, schema_cache: Path) -> list[str]:
    """The environments rendered in full (not answered from a stamp), appended as they are."""
    rendered = counted(monkeypatch, "render_env")
    monkeypatch.setenv("LLMPACK_CACHE_DIR", str(schema_cache))
    # The CRDs `settled` found, settled with it (without ../shared they were fetched into llmpack's cache
    # before the wait): CRDs the first render fetched itself would be too young for a stamp.
    monkeypatch.setenv("LLMPACK_CRD_DIR", str(crd_dir()))
    return rendered


def counted(monkeypatch: pytest.MonkeyPatch, stage: str) -> list[str]:
    """The environments `pipeline.<stage>` (render_env or build) is called for, appended as it is."""
    called: list[str] = []
    real = getattr(pipeline, stage)

    def counting(project: object, env: str, *args: object) -> object:
        called.append(env)
        return real(project, env, *args)

    monkeypatch.setattr(pipeline, stage, counting)
    return called


def render(root: Path, *args: str) -> str:
    """`llmpack -C ROOT render --env test ARGS` in this process; what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["-C", str(root), "render", "--env", "test", *args]) == 0
    return out.getvalue()


def answered(root: Path, full: list[str], *args: str) -> bool:
    """Render (the stamp's own render first, if need be) and say whether the stamp answered."""
    before = len(full)
    render(root, *args)
    return len(full) == before


@contextlib.contextmanager
def rendered_once(root: Path, full: list[str], *args: str) -> Iterator[None]:
    """A render that keeps a stamp, and a proof that the stamp answers the next render."""
    render(root, *args)
    assert answered(root, full, *args), "the stamp must answer a render that changes nothing"
    yield


def change(path: Path, edit: Callable[[str], str]) -> None:
    text = path.read_text()
    path.write_text(edit(text))
    assert path.read_text() != text


def test_a_changed_values_file_renders(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["values"]
    with rendered_once(root, full):
        change(root / "overlays/test/values.yaml", lambda t: t.replace("size: 1", "size: 2"))
    assert not answered(root, full)


def test_a_release_file_added_or_removed_renders(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["releases"]
    with rendered_once(root, full):
        (root / "overlays/test/releases/b.yaml").write_text("name: model-b\nmodel: {storageUri: pvc://b/m}\n")
    assert not answered(root, full)
    (root / "overlays/test/releases/b.yaml").unlink()
    assert not answered(root, full)


def test_an_extra_values_file_and_set_are_inputs(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["extra"]
    with rendered_once(root, full, "-f", str(root / "extra.yaml"), "--set", "pvc.create=true"):
        change(root / "extra.yaml", lambda t: t.replace("60Gi", "70Gi"))
    assert not answered(root, full, "-f", str(root / "extra.yaml"), "--set", "pvc.create=true")
    assert not answered(root, full, "-f", str(root / "extra.yaml"), "--set", "pvc.create=false")


def test_the_set_of_a_render_names_its_stamp(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["set"]
    with rendered_once(root, full, "--set", "pvc.size=80Gi"):
        pass
    assert not answered(root, full, "--set", "pvc.size=90Gi")
    assert not answered(root, full)


def test_a_changed_template_renders(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["chart"]
    with rendered_once(root, full):
        change(root / "charts/kserve-multinode/templates/README.md", lambda t: t + "\nOne more line.\n")
    assert not answered(root, full)


def test_a_changed_values_schema_renders(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["schema"]
    with rendered_once(root, full):
        change(root / "schemas/values.schema.json", lambda t: t.replace('"description"', '"description" ', 1))
    assert not answered(root, full)


def test_one_changed_byte_of_a_crd_renders_and_validates_again(settled: dict[str, Path], full: list[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = settled["crd"]
    monkeypatch.setenv("LLMPACK_KUBECONFORM", str(root / "kubeconform"))
    monkeypatch.setenv("LLMPACK_CRD_DIR", str(root / "crds"))
    with rendered_once(root, full):
        runs = len((root / "runs.log").read_text().splitlines())
        crd = root / "crds/kserve/v0.20.0/serving.kserve.io_inferenceservices.yaml"
        change(crd, lambda t: t.replace("kubebuilder.io/version: v0.19.0", "kubebuilder.io/version: v0.19.1", 1))
    assert not answered(root, full)
    assert len((root / "runs.log").read_text().splitlines()) == runs + 1, "the render validated again"


def test_another_kubeconform_renders(settled: dict[str, Path], full: list[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = settled["tool"]
    monkeypatch.setenv("LLMPACK_KUBECONFORM", str(root / "kubeconform"))
    with rendered_once(root, full):
        change(root / "kubeconform", lambda t: t.replace("#!/bin/sh\n", "#!/bin/sh\n# another build\n"))
    assert not answered(root, full)


def test_another_llmpack_version_renders(settled: dict[str, Path], full: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = settled["version"]
    with rendered_once(root, full):
        monkeypatch.setattr(generator, "__version__", "0.1.0+other")
    assert not answered(root, full)


def test_changed_code_renders(settled: dict[str, Path], full: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every imported module's file is an input (here one outside llmpack, imported before the render)."""
    root = settled["code"]
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)   # a __pycache__ written now would make the project young
    __import__("llmpack_plugin")
    try:
        with rendered_once(root, full):
            change(root / "llmpack_plugin.py", lambda t: t.replace("1", "2"))
        assert not answered(root, full)
    finally:
        sys.modules.pop("llmpack_plugin", None)


def test_the_environment_names_the_stamp(settled: dict[str, Path], full: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = settled["environ"]
    with rendered_once(root, full):
        monkeypatch.setenv("LLMPACK_CRD_DIR", f"{crd_dir()}{os.sep}")    # the same folder, said otherwise
    assert not answered(root, full)


@pytest.mark.parametrize("kind", ["edited", "deleted", "added"])
def test_a_touched_output_renders(settled: dict[str, Path], full: list[str], kind: str) -> None:
    root = settled[kind]
    out = root / "rendered/test/huggingface-llama3/storage/persistentvolumeclaim.yaml"
    with rendered_once(root, full):
        if kind == "edited":
            change(out, lambda t: t.replace('"50Gi"', '"51Gi"'))
        elif kind == "deleted":
            out.unlink()
        else:
            (out.parent / "more.yaml").write_text("x: 1\n")
    assert not answered(root, full)
    assert answered(root, full), "the full render repaired rendered/ and kept a stamp"


def test_leftovers_of_a_killed_render_render(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["leftover"]
    with rendered_once(root, full):
        (root / "rendered" / ".llmpack-test-999999").mkdir()
    assert not answered(root, full)
    assert sorted(p.name for p in (root / "rendered").iterdir()) == ["test"]


def test_an_input_changed_just_before_the_render_keeps_no_stamp(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["young"]
    (root / "overlays/test/values.yaml").write_text("workerSpec: {size: 1}\npvc: {size: 55Gi}\n")
    render(root)
    assert not answered(root, full), "a file this young could change again without its stat showing it"


def test_an_input_changed_during_the_render_keeps_no_stamp(settled: dict[str, Path], tmp_path: Path) -> None:
    root = settled["during"]
    values = root / "overlays/test/values.yaml"
    recorder = stamp.Recorder(root, {"test": True})
    with recorder:
        values.read_text()
    values.write_text("workerSpec: {size: 2}\n")
    assert not stamp.save(recorder, root, outputs={}, lines=[])
    recorder.seen.clear()
    assert stamp.save(recorder, root, outputs={}, lines=["kept"])
    assert stamp.answer(root, {"test": True}) == (["kept"], None)


def test_the_answer_is_what_the_full_render_printed(settled: dict[str, Path], full: list[str]) -> None:
    root = settled["printed"]
    first = render(root)
    head, _, written = first.rstrip("\n").rpartition("\n")
    assert written.startswith("wrote rendered/test/ (") and written.endswith(" files)")
    again = render(root)
    assert len(full) == 1
    assert again == f"{head}\n{written.replace('wrote rendered/test/', 'rendered/test/ is up to date')}\n"
    assert render(root) == again and len(full) == 1
    assert render(root, "-q") == ""


def test_a_stdout_render_is_answered_with_the_same_stream(settled: dict[str, Path], full: list[str],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--stdout keeps a stamp of its own (it writes no file): the same YAML and report, byte for byte,
    until an input changes."""
    root = settled["stdout"]
    built = counted(monkeypatch, "build")

    def printed(*args: str) -> tuple[str, str]:
        assert cli.main(["-C", str(root), "render", "--env", "test", "--stdout", *args]) == 0
        out = capsys.readouterr()
        return out.out, out.err

    first = printed()
    assert first[0].startswith("# Source: rendered/test/") and "validated" in first[1] and built == ["test"]
    assert printed() == first and printed("-q") == (first[0], "") and built == ["test"]
    assert not (root / "rendered").exists()
    change(root / "overlays/test/values.yaml", lambda t: t.replace("size: 1", "size: 2"))
    second = printed()
    assert built == ["test", "test"] and second != first


def test_a_no_op_render_imports_only_the_standard_library(settled: dict[str, Path], schema_cache: Path) -> None:
    root = settled["imports"]
    env = {**os.environ, "LLMPACK_CACHE_DIR": str(schema_cache), "PYTHONPATH": str(REPO),
           "LLMPACK_CRD_DIR": str(crd_dir())}   # settled CRDs, as in `full`
    code = ("import sys; from generator.cli import main; main(sys.argv[1:]); "
            "print(sorted(m for m in sys.modules if m.startswith(('jinja2', 'yaml', 'generator'))))")
    command = [sys.executable, "-c", code, "-C", str(root), "render", "--env", "test", "-q"]
    first = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    assert "'generator.pipeline'" in first.stdout and "'jinja2'" in first.stdout
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    assert "'generator.stamp'" in done.stdout
    imported = set(done.stdout.strip("[]\n").split(", "))
    assert not {"'jinja2'", "'yaml'", "'generator.pipeline'", "'generator.project'", "'generator.errors'",
                "'generator.tokens'"} & imported
