"""The real kubeconform, strict, with core schemas from kubernetes-validate and the CRDs of each
KServe release in ../shared/crds: good bundles pass, real mistakes are caught, located, and
nothing is written."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import kubeconform
from generator.check import SchemaCheck
from generator.errors import CheckError, ToolError
from generator.pipeline import Extras, Project, build
from generator.schemas import SchemaSources, convert_crd
from helpers import REPO, ProjectFactory, crd_dir

ENVS = ["dev", "staging", "prod"]
RELEASES_WITH_CRDS = {"0.15": "v0.15.2", "0.16": "v0.16.0", "0.18": "v0.18.1", "0.20": "v0.20.0"}


@pytest.mark.parametrize("version", sorted(RELEASES_WITH_CRDS))
@pytest.mark.parametrize("env", ENVS)
def test_example_environment_validates_against_every_release(env: str, version: str,
                                                             schema_check: SchemaCheck) -> None:
    bundle = build(Project(REPO), env, Extras(sets=(f'kserve.version="{version}"',)), schema_check)
    assert {p.kserve.patch for p in bundle.plans} == {RELEASES_WITH_CRDS[version].lstrip("v")}


@pytest.mark.parametrize("env", ENVS)
def test_raw_target_validates(env: str, schema_check: SchemaCheck) -> None:
    bundle = build(Project(REPO), env, Extras(sets=("target=raw",)), schema_check)
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
    (tmp_path / "overlays" / "test" / "values.yaml").write_text('kserve: {version: "0.18"}\n')
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
    assert done.stdout == "rendered/prod: 10 objects in 2 release(s) are valid (bundle checks and kubeconform)\n"


def test_missing_kubeconform_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMPACK_KUBECONFORM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"kubeconform not found .*run `make tools`, which installs kubeconform "
                                        r"v0\.7\.0 with go install"):
        kubeconform.find(tmp_path)


def test_missing_crds_say_how_to_get_them(make_project: ProjectFactory, tmp_path: Path) -> None:
    empty = tmp_path / "no-crds"
    (empty / "kserve").mkdir(parents=True)
    check = SchemaCheck(SchemaSources((empty,), tmp_path / "cache"), (REPO,))
    with pytest.raises(ToolError) as caught:
        build(make_project(""), "test", schemas=check)
    assert "no CustomResourceDefinitions for KServe 0.20.0" in str(caught.value)
    assert "--crd-dir" in str(caught.value) and "llmpack schemas fetch --kserve-version 0.20" in str(caught.value)


def test_a_kind_without_schema_is_an_error_not_a_skip(make_project: ProjectFactory, tmp_path: Path) -> None:
    only_core = tmp_path / "argo-only"
    shutil.copytree(crd_dir() / "argocd", only_core / "argocd")
    check = SchemaCheck(SchemaSources((only_core,), tmp_path / "cache"), (REPO,))
    with pytest.raises(CheckError) as caught:
        build(make_project(""), "test", schemas=check)
    messages = [str(f) for f in caught.value.findings]
    assert ("rendered/test/huggingface-llama3/serving/inferenceservice.yaml: no schema for InferenceService "
            "serving.kserve.io/v1beta1: add its CustomResourceDefinition to the CRD folder (--crd-dir), or check "
            "apiVersion and kind") in messages


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


@pytest.fixture
def crd_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 laid out like raw.githubusercontent.com/kserve/kserve."""
    root = tmp_path / "www"
    for version in ("v0.15.2", "v0.20.0"):
        target = root / version / "config" / "crd" / "full"
        shutil.copytree(crd_dir() / "kserve" / version, target)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_fetch_from_a_loopback_server_then_validate_with_fetched_crds(crd_server: tuple[str, Path],
                                                                     tmp_path: Path) -> None:
    url, _ = crd_server
    cache = tmp_path / "cache"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLMPACK_CACHE_DIR": str(cache),
           "LLMPACK_KUBECONFORM": str(kubeconform.find(REPO))}
    fetch = subprocess.run([sys.executable, "-m", "generator", "schemas", "fetch", "--kserve-version", "0.15",
                            "--base-url", url], capture_output=True, text=True, env=env, cwd=REPO)
    assert fetch.returncode == 0, fetch.stderr
    assert sorted(p.name for p in (cache / "crds/kserve/v0.15.2").iterdir()) == [
        "serving.kserve.io_clusterservingruntimes.yaml", "serving.kserve.io_inferenceservices.yaml",
        "serving.kserve.io_servingruntimes.yaml"]
    validate = subprocess.run([sys.executable, "-m", "generator", "validate", "--env", "dev", "--set",
                               'kserve.version="0.15"'], capture_output=True, text=True, env=env, cwd=REPO)
    assert validate.returncode == 0, validate.stderr


def test_fetch_refuses_a_wrong_digest_and_stores_nothing(crd_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = crd_server
    tampered = root / "v0.20.0/config/crd/full/serving.kserve.io_servingruntimes.yaml"
    tampered.write_text(tampered.read_text() + "# tampered\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLMPACK_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "generator", "schemas", "fetch", "--kserve-version", "0.20",
                           "--base-url", url], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 1
    assert f"error: {url}/v0.20.0/config/crd/full/serving.kserve.io_servingruntimes.yaml has sha256 " in done.stderr
    assert "refusing it (nothing was stored)" in done.stderr
    assert not (tmp_path / "cache" / "crds" / "kserve" / "v0.20.0").exists()


def test_fetch_of_an_unreachable_host_and_an_unpinned_release(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLMPACK_CACHE_DIR": str(tmp_path / "cache")}
    run = [sys.executable, "-m", "generator", "schemas", "fetch", "--kserve-version"]
    refused = subprocess.run([*run, "0.20", "--base-url", "http://127.0.0.1:9"], capture_output=True, text=True,
                             env=env, cwd=REPO)
    assert refused.returncode == 1 and "cannot download http://127.0.0.1:9/v0.20.0/" in refused.stderr
    unpinned = subprocess.run([*run, "0.17"], capture_output=True, text=True, env=env, cwd=REPO)
    assert unpinned.returncode == 1 and "no pinned digests for KServe 0.17.0" in unpinned.stderr


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
        'kserve: {version: "0.18"}\ngitops: {argocd: {enabled: true, repoURL: "https://git.example/x.git"}}\n')
    path = chart_copy / "charts/kserve-multinode/gitops/argocd/application.yaml"
    path.write_text(path.read_text().replace("    targetRevision:", "    targetRevison:", 1))
    done = cli(chart_copy, "render", "--env", "test", cache=schema_cache)
    assert done.returncode == 1
    assert ("  - rendered/test/gitops/argocd/application.yaml: /spec/source: additional properties 'targetRevison' "
            "not allowed\n") in done.stderr, done.stderr
