"""The real kubeconform, strict, with core schemas from kubernetes-validate and the CRDs of each
KServe release in ../shared/crds: good bundles pass, real mistakes are caught, located, and
nothing is written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator import kubeconform
from generator.check import SchemaCheck
from generator.crds import SchemaSources
from generator.errors import CheckError, ToolError
from generator.pipeline import build
from generator.project import Extras, Project
from generator.releases import RELEASES
from generator.schemas import convert_crd
from helpers import REPO, ProjectFactory, crd_dir, kserve_release

ENVS = ["dev", "staging", "prod"]
PHASES = "storage, download, serving, verify"


@pytest.mark.parametrize("version", sorted(set(RELEASES) - {"0.15.0"}))   # 0.15.0 needs PP >= 2: see below
@pytest.mark.parametrize("env", ENVS)
def test_example_environment_validates_against_every_release(env: str, version: str,
                                                             schema_check: SchemaCheck) -> None:
    kserve_release(RELEASES[version].patch)
    bundle = build(Project.at(REPO), env, Extras(sets=(f'kserve.version="{version}"',)), schema_check)
    assert {p.kserve.patch for p in bundle.plans} == {RELEASES[version].patch}
    assert any(f"KServe {RELEASES[version].patch} CRDs" in line for line in bundle.validated), bundle.validated


def test_kserve_0_15_0_validates_where_its_rules_allow(schema_check: SchemaCheck) -> None:
    kserve_release("0.15.0")
    bundle = build(Project.at(REPO), "prod", Extras(sets=('kserve.version="0.15.0"',)), schema_check)
    assert {p.kserve.patch for p in bundle.plans} == {"0.15.0"}


@pytest.mark.parametrize("env", ENVS)
def test_raw_target_validates(env: str, schema_check: SchemaCheck) -> None:
    bundle = build(Project.at(REPO), env, Extras(sets=("target=raw",)), schema_check)
    assert {f.key[0] for f in bundle.files if f.key} >= {"Deployment", "Service"}


def test_raw_and_oci_variants_validate(make_project: ProjectFactory, schema_check: SchemaCheck) -> None:
    oci = 'model: {storageUri: "oci://registry.example/llama:1"}\ndownload: {enabled: false}\npvc: {create: false}'
    build(make_project(oci), "test", schemas=schema_check)


def cli(project: Path, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLMPACK_CRD_DIR": str(crd_dir()),
           "LLMPACK_KUBECONFORM": str(kubeconform.find(REPO)), "LLMPACK_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "generator", "-C", str(project), *args],
                          capture_output=True, text=True, env=env)


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    """A project with its own copy of the chart, for tests that break a template on purpose."""
    shutil.copytree(REPO / "charts", tmp_path / "charts")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    (tmp_path / "overlays" / "test").mkdir(parents=True)
    (tmp_path / "overlays" / "test" / "values.yaml").write_text('kserve: {version: "0.19"}\n')
    return tmp_path


def break_template(project: Path, name: str, old: str, new: str) -> None:
    path = project / "charts" / "kserve-multinode" / "templates" / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


MISTAKES = [
    ("unknown-crd-field", "serving/inferenceservice.yaml",
     '"tensorParallelSize": plan.tensor_parallel,', '"tensorParallelSize": plan.tensor_parallel, "size": 1,',
     "rendered/test/huggingface-llama3/serving/inferenceservice.yaml: /spec/predictor/workerSpec: additional "
     "properties 'size' not allowed"),
    ("wrong-type", "serving/servingruntime.yaml",
     "    tensorParallelSize: {{ plan.tensor_parallel | q }}", '    tensorParallelSize: "{{ plan.tensor_parallel }}"',
     "rendered/test/huggingface-llama3/serving/servingruntime.yaml: /spec/workerSpec/tensorParallelSize: got string, "
     "want integer"),
    ("core-typo", "storage/persistentvolumeclaim.yaml",
     "  accessModes:", "  accesModes:",
     "rendered/test/huggingface-llama3/storage/persistentvolumeclaim.yaml: /spec: additional properties 'accesModes' "
     "not allowed"),
]


@pytest.mark.parametrize(("template", "old", "new", "finding"), [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_kubeconform_catches_real_mistakes(chart_copy: Path, schema_cache: Path, template: str, old: str,
                                           new: str, finding: str) -> None:
    assert cli(chart_copy, "render", "--env", "test", "-q", cache=schema_cache).returncode == 0
    before = {p: p.read_bytes() for p in (chart_copy / "rendered").rglob("*") if p.is_file()}
    break_template(chart_copy, template, old, new)
    done = cli(chart_copy, "render", "--env", "test", cache=schema_cache)
    assert done.returncode == 1
    assert done.stderr.startswith("error: the rendered bundle is invalid (1 finding); nothing was written:\n")
    assert f"  - {finding}\n" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    after = {p: p.read_bytes() for p in (chart_copy / "rendered").rglob("*") if p.is_file()}
    assert after == before
    validate = cli(chart_copy, "validate", "--env", "test", cache=schema_cache)
    assert validate.returncode == 1 and finding in validate.stderr


def test_validate_reports_a_valid_environment(schema_cache: Path) -> None:
    done = cli(REPO, "validate", "--env", "prod", cache=schema_cache)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "rendered/prod: 12 objects in 2 release(s) are valid"
    assert lines[1].startswith("llama3-70b: llama3-70b-instruct in llm-serving, KServe 0.19 (kserve): "), done.stdout
    assert any(line.startswith("  validated ") and "KServe 0.19.0 CRDs from " in line for line in lines), done.stdout


@pytest.mark.parametrize("command", [("validate",), ("render", "--stdout")])
def test_validate_and_stdout_warn_about_known_bugs(command: tuple[str, ...], schema_cache: Path) -> None:
    """The render report (notes and known-bug warnings) is not only for renders to files."""
    done = cli(REPO, *command, "--env", "dev", "--set", 'kserve.version="0.20"', cache=schema_cache)
    assert done.returncode == 0, done.stderr
    report = done.stdout if command == ("validate",) else done.stderr
    assert "#6113" in report, report
    assert 'use KServe 0.19 (kserve.version: "0.19")' in report, report


def test_missing_kubeconform_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMPACK_KUBECONFORM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"kubeconform v0\.7\.0 not found .*install Go .* llmpack builds it on "
                                        r"first use, or run `make tools`"):
        kubeconform.find(tmp_path)


def test_a_kind_without_schema_is_an_error_not_a_skip(make_project: ProjectFactory, tmp_path: Path) -> None:
    """A flat CRD folder (the CRDs of one's cluster) with the InferenceService CRD only."""
    cluster = tmp_path / "my-cluster"
    cluster.mkdir()
    isvc = "serving.kserve.io_inferenceservices.yaml"
    shutil.copy(kserve_release("0.20.0") / isvc, cluster / isvc)
    check = SchemaCheck(SchemaSources((cluster,), tmp_path / "cache"), (REPO,))
    with pytest.raises(CheckError) as caught:
        build(make_project(""), "test", schemas=check)
    assert ("rendered/test/huggingface-llama3/serving/servingruntime.yaml: no schema for ServingRuntime "
            "serving.kserve.io/v1alpha1: add its CustomResourceDefinition to the CRD folder (--crd-dir), or check "
            "apiVersion and kind") in [str(f) for f in caught.value.findings]


@pytest.mark.parametrize(("template", "message"), [
    ("policy/budget.yaml", "template error at policy/budget.yaml: a template in folder 'policy' belongs to no phase; "
                           f"put it in one of {PHASES} (or add a phase to generator/layout.py)"),
    ("stray.yaml", "template error at stray.yaml: a template in the top of templates/ belongs to no phase; put it in "
                   f"one of {PHASES} (or add a phase to generator/layout.py)"),
    ("serving/widget.yaml", "template error at serving/widget.yaml: renders a Widget, a kind llmpack does not know; "
                            "add it to KINDS in generator/layout.py (its sync wave, name rules and pods)"),
])
def test_the_layout_is_data_and_a_template_outside_it_is_a_located_error(chart_copy: Path, schema_cache: Path,
                                                                        template: str, message: str) -> None:
    path = chart_copy / "charts/kserve-multinode/templates" / template
    path.parent.mkdir(exist_ok=True)
    path.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    done = cli(chart_copy, "render", "--env", "test", cache=schema_cache)
    assert done.returncode == 1 and done.stderr == f"error: {message}\n", done.stderr


def test_crds_of_ones_cluster_as_a_kubectl_list(make_project: ProjectFactory, tmp_path: Path) -> None:
    """`kubectl get crd ... -o yaml` gives a List; a flat folder of it is a CRD source."""
    import yaml

    folder = crd_dir() / "kserve" / "v0.20.0"
    items = [yaml.load(p.read_text(), Loader=yaml.CSafeLoader) for p in sorted(folder.glob("*.yaml"))]
    cluster = tmp_path / "my-cluster"
    cluster.mkdir()
    (cluster / "crds.yaml").write_text(yaml.dump({"apiVersion": "v1", "kind": "List", "items": items},
                                                  Dumper=yaml.CSafeDumper))
    check = SchemaCheck(SchemaSources((cluster,), tmp_path / "cache"), (REPO,))
    build(make_project(""), "test", schemas=check)


def test_crd_conversion_is_strict_where_the_crd_is() -> None:
    crd = {"spec": {"group": "example.com", "names": {"kind": "Thing"}, "versions": [{"name": "v1", "schema": {
        "openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {
                    "a": {"type": "string"}}},
            }}}}}}]}}
    schema = convert_crd(crd)[("example.com", "Thing", "v1")]
    spec = schema["properties"]["spec"]
    assert schema["additionalProperties"] is False and spec["additionalProperties"] is False
    assert spec["properties"]["port"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert spec["properties"]["note"]["type"] == ["string", "null"]
    assert "additionalProperties" not in spec["properties"]["free"]
    assert schema["properties"]["kind"] == {"type": "string", "enum": ["Thing"]}


def test_kubeconform_checks_the_gitops_objects_too(chart_copy: Path, schema_cache: Path) -> None:
    (chart_copy / "overlays/test/values.yaml").write_text(
        'kserve: {version: "0.19"}\ngitops: {argocd: {enabled: true, repoURL: "https://git.example/x.git"}}\n')
    path = chart_copy / "charts/kserve-multinode/gitops/argocd/application.yaml"
    path.write_text(path.read_text().replace("    targetRevision:", "    targetRevison:", 1))
    done = cli(chart_copy, "render", "--env", "test", cache=schema_cache)
    assert done.returncode == 1
    assert ("  - rendered/test/gitops/argocd/application.yaml: /spec/source: additional properties 'targetRevison' "
            "not allowed\n") in done.stderr, done.stderr


def test_a_fleet_shares_kubeconform_runs_and_each_finding_reaches_its_file(
        make_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From kubeconform.SPREAD_AFTER objects of one schema set on, a second run shares them: every
    verdict still names the file it is about (the CRD here lets only `pvc://even-...` model URIs pass)."""
    import yaml

    crds = tmp_path / "crds" / "kserve" / "v0.19.0"
    shutil.copytree(kserve_release("0.19.0"), crds)
    isvc = crds / "serving.kserve.io_inferenceservices.yaml"
    crd = yaml.load(isvc.read_text(), Loader=yaml.CSafeLoader)
    model = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "predictor"]["properties"]["model"]["properties"]
    model["storageUri"]["pattern"] = "^pvc://even-"
    isvc.write_text(yaml.dump(crd, Dumper=yaml.CSafeDumper))
    log, real = tmp_path / "runs.log", kubeconform.find(REPO)
    wrapper = tmp_path / "kubeconform"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("LLMPACK_KUBECONFORM", str(wrapper))
    count = kubeconform.SPREAD_AFTER // 4 + 8        # about 5 objects per release: past SPREAD_AFTER
    parity = {i: "even" if i % 2 == 0 else "odd" for i in range(count)}
    releases = {f"r{i:02d}": f"name: m{i:02d}\nmodel: {{storageUri: 'pvc://{parity[i]}-{i:02d}/m'}}\n"
                for i in range(count)}
    check = SchemaCheck(SchemaSources((tmp_path / "crds",), tmp_path / "cache"), (REPO,))
    with pytest.raises(CheckError) as caught:
        build(make_project("", releases), "test", schemas=check)
    failed = sorted({(f.file, f.path) for f in caught.value.findings})
    assert failed == [(f"rendered/test/r{i:02d}/serving/inferenceservice.yaml", "/spec/predictor/model/storageUri")
                      for i in range(count) if parity[i] == "odd"], failed
    assert len(log.read_text().splitlines()) == min(2, kubeconform.WORKERS), "runs of kubeconform"
