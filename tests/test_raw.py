"""target raw: the objects it renders and what it refuses.

That the raw Deployments and Services are what KServe's controller builds from the kserve bundle
of the same values is proved against the real controller, field by field, for every example and
release: tests/conformance/test_matrix.py::test_raw_bundle (`make conformance`).
"""

from __future__ import annotations

import pytest

from generator.errors import ValuesError
from generator.pipeline import build
from helpers import REPO, ProjectFactory


def test_raw_topology_objects(make_project: ProjectFactory) -> None:
    bundle = build(make_project('target: raw\nkserve: {version: "0.18"}\nmodel:\n  env:\n'
                                '    - {name: PIPELINE_PARALLEL_SIZE, value: "3"}\n'), "test")
    by_name = {(f.obj["kind"], f.obj["metadata"]["name"]): f.obj for f in bundle.files if f.obj}
    download = bundle.plans[0].download
    assert download is not None
    name = "huggingface-llama3"
    assert set(by_name) == {
        ("PersistentVolumeClaim", "llama-3-8b-pvc"), ("Job", download.job),
        ("Deployment", f"{name}-predictor"), ("Deployment", f"{name}-predictor-worker"),
        ("Service", f"{name}-predictor"), ("Service", f"{name}-head"), ("Service", f"{name}-workers"),
        ("Job", bundle.plans[0].verify.job if bundle.plans[0].verify else "")}
    service = by_name[("Service", f"{name}-predictor")]["spec"]
    assert service["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                                {"name": "llmpack-status", "protocol": "TCP", "port": 8081, "targetPort": 8081}]
    assert service["selector"] == {"app": f"isvc.{name}-predictor"}
    head_service = by_name[("Service", f"{name}-head")]["spec"]
    assert head_service == {"clusterIP": "None", "publishNotReadyAddresses": True,
                            "selector": {"app": f"isvc.{name}-predictor"}}
    head = by_name[("Deployment", f"{name}-predictor")]["spec"]
    worker = by_name[("Deployment", f"{name}-predictor-worker")]["spec"]
    assert head["strategy"] == {"type": "Recreate"}
    assert worker["strategy"] == {"type": "Recreate"}   # the controller's, for both (make conformance)
    assert worker["replicas"] == 2
    shm = next(v for v in head["template"]["spec"]["volumes"] if v["name"] == "shm")
    assert shm == {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "12Gi"}}


@pytest.mark.parametrize(("values", "message"), [
    ("target: raw\nruntime: {create: false, name: x}", "target raw renders the pods itself"),
    ('target: raw\nkserve: {version: "0.16"}\nmodel: {storageUri: "oci://r/m:1"}\ndownload: {enabled: false}\n'
     "pvc: {create: false}", "target raw needs a pvc:// storageUri"),
])
def test_raw_needs_its_runtime_and_a_claim(make_project: ProjectFactory, values: str, message: str) -> None:
    with pytest.raises(ValuesError, match=message):
        build(make_project(values), "test")


@pytest.mark.parametrize("script", ["head.sh", "worker.sh", "probe.sh", "worker-probe.sh"])
def test_upstream_flavor_scripts_are_valid_bash(script: str) -> None:
    """The scripts of runtime.flavor kserve (KServe's image) at least parse; the default flavor's
    entrypoint is tested against real Ray in vllm-runtime/tests."""
    import subprocess

    path = REPO / "charts" / "kserve-multinode" / "files" / script
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
