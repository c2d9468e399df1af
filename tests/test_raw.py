"""target raw renders the topology KServe's controller would build from the kserve bundle.

`kserve_pods` below applies the controller's rules (shared/reference/kserve-multinode.md §3-5
and §7) to the rendered ServingRuntime and InferenceService; the raw Deployments must match
the pods it derives, field by field. No cluster exists here: the controller's behaviour is
re-stated in this test, not run.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from generator.errors import ValuesError
from generator.pipeline import build
from generator.project import Extras, Project
from generator.releases import RELEASES, KServeRelease, gpu_allocation
from helpers import REPO, ProjectFactory

GENERATION = "1"


def objects(env: str, target: str, version: str) -> dict[tuple[str, str], dict[str, Any]]:
    bundle = build(Project.at(REPO), env, Extras(sets=(f"target={target}", f'kserve.version="{version}"')))
    return {(f.path.split("/")[0], f.obj["kind"] + ":" + f.obj["metadata"]["name"]): f.obj
            for f in bundle.files if f.obj and not f.path.startswith("gitops/")}


def merge_env(base: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {e["name"]: e for e in base}
    merged.update({e["name"]: e for e in extra})
    return list(merged.values())


def merge_container(runtime: dict[str, Any], isvc: dict[str, Any]) -> dict[str, Any]:
    """KServe merges the InferenceService's container into the runtime's (strategic merge)."""
    out = copy.deepcopy(runtime)
    for key, value in isvc.items():
        if key == "env":
            out["env"] = merge_env(out.get("env", []), value)
        elif key == "resources":
            out["resources"] = {k: {**out.get("resources", {}).get(k, {}), **v} for k, v in value.items()}
        elif key not in ("modelFormat", "runtime", "storageUri"):
            out[key] = value
    return out


def gpus(container: dict[str, Any]) -> int:
    return int(container.get("resources", {}).get("requests", {}).get("nvidia.com/gpu", 0))


def kserve_pods(runtime: dict[str, Any], isvc: dict[str, Any], release: KServeRelease
                ) -> tuple[dict[str, Any], dict[str, Any], int]:
    name = isvc["metadata"]["name"]
    predictor = isvc["spec"]["predictor"]
    head = merge_container(runtime["spec"]["containers"][0], predictor["model"])
    worker = merge_container(runtime["spec"]["workerSpec"]["containers"][0], predictor["workerSpec"]["containers"][0])
    tp = predictor["workerSpec"].get("tensorParallelSize", runtime["spec"]["workerSpec"]["tensorParallelSize"])
    pp = predictor["workerSpec"].get("pipelineParallelSize", runtime["spec"]["workerSpec"]["pipelineParallelSize"])
    nodes, head_gpus, worker_gpus = gpu_allocation(tp * pp, gpus(head), gpus(worker))
    for container, count in ((head, head_gpus), (worker, worker_gpus or gpus(worker))):
        for kind in ("requests", "limits"):
            container["resources"][kind]["nvidia.com/gpu"] = str(count)
    parallel = [{"name": "PIPELINE_PARALLEL_SIZE", "value": str(pp)},
                {"name": "TENSOR_PARALLEL_SIZE", "value": str(tp)}]
    head["env"] = merge_env(head["env"], [*parallel, {"name": "RAY_NODE_COUNT", "value": str(nodes)},
                                          {"name": "REQUEST_GPU_COUNT", "value": str(head_gpus)},
                                          {"name": "MODEL_NAME", "value": name},
                                          {"name": "MODEL_DIR", "value": "/mnt/models"}])
    if "INFERENCE_SERVICE_NAME" in release.head_env:
        head["env"] = merge_env(head["env"], [{"name": "INFERENCE_SERVICE_NAME", "value": name}])
    worker_env = [{"name": "RAY_NODE_COUNT", "value": str(nodes)},
                  {"name": "REQUEST_GPU_COUNT", "value": str(worker_gpus or gpus(worker))},
                  {"name": "ISVC_NAME", "value": name}, {"name": "HEAD_SVC", "value": f"{name}-head-{GENERATION}"}]
    if release.worker_service:
        worker_env += [*parallel, {"name": "WORKER_SVC", "value": f"{name}-workers-{GENERATION}"}]
    worker["env"] = merge_env(worker["env"], worker_env)
    claim, _, path = predictor["model"]["storageUri"].removeprefix("pvc://").partition("/")
    mount = {"name": "kserve-pvc-source", "mountPath": "/mnt/models", "subPath": path, "readOnly": True}
    volume = {"name": "kserve-pvc-source", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    pods = []
    for container, runtime_volumes, pod_fields in (
            (head, runtime["spec"]["volumes"], predictor),
            (worker, runtime["spec"]["workerSpec"]["volumes"], predictor["workerSpec"])):
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
        pod = {key: pod_fields[key] for key in ("securityContext", "automountServiceAccountToken", "nodeSelector",
                                                 "tolerations") if key in pod_fields}
        pods.append({**pod, "containers": [container], "volumes": [*runtime_volumes, volume]})
    return pods[0], pods[1], nodes - 1


def without_generation(env: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Raw names its headless Services without a generation (there is no controller to bump one)."""
    renamed = {f"{name}-head-{GENERATION}": f"{name}-head", f"{name}-workers-{GENERATION}": f"{name}-workers"}
    return {e["name"]: {**e, "value": renamed.get(e.get("value", ""), e.get("value"))} if "value" in e else e
            for e in env}


FIELDS = ("image", "command", "args", "resources", "volumeMounts", "startupProbe", "readinessProbe",
          "livenessProbe", "securityContext")


@pytest.mark.parametrize("version", ["0.15", "0.17", "0.20"])
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_raw_deployments_match_the_pods_kserve_would_build(env: str, version: str) -> None:
    kserve, raw = objects(env, "kserve", version), objects(env, "raw", version)
    releases = {release for release, _ in kserve}
    for release in releases:
        isvc = next(o for (r, k), o in kserve.items() if r == release and k.startswith("InferenceService:"))
        runtime = next(o for (r, k), o in kserve.items() if r == release and k.startswith("ServingRuntime:"))
        name = isvc["metadata"]["name"]
        head, worker, workers = kserve_pods(runtime, isvc, RELEASES[version])
        raw_head = raw[(release, f"Deployment:{name}-predictor")]
        raw_worker = raw[(release, f"Deployment:{name}-predictor-worker")]
        assert raw_worker["spec"]["replicas"] == workers
        assert raw_head["spec"]["replicas"] == 1
        for expected, deployment in ((head, raw_head), (worker, raw_worker)):
            pod = deployment["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            (wanted,) = expected["containers"]
            for field in FIELDS:
                assert container.get(field) == wanted.get(field), f"{release} {container['name']}: {field}"
            assert without_generation(container["env"], name) == without_generation(wanted["env"], name)
            assert pod["volumes"] == expected["volumes"]
            for key in ("securityContext", "automountServiceAccountToken", "nodeSelector", "tolerations"):
                assert pod.get(key) == expected.get(key), key


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
    assert worker["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "0%",
                                                                             "maxSurge": "100%"}}
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
