"""The Argo CD health checks (charts/kserve-multinode/files/argocd-health-*.lua) run in a real
Lua 5.1, in Argo CD's sandbox.

Argo CD evaluates custom health scripts with gopher-lua (Lua 5.1 semantics). Unless
`resource.customizations.useOpenLibs.<group_kind>` is "true" it opens only the base, table, package
and a reduced os library (argo-cd util/lua/lua.go), sets the global `obj` to the live object and
reads the table the script returns. The harness rebuilds that on lupa's Lua 5.1 runtime: it removes
the string, math, io, os, debug and coroutine libraries and the string metatable, so a script that
calls `string.find` or `s:sub` fails here as it would in Argo CD.

Samples are in tests/data/isvc-status/ (InferenceService and download Job); each test checks the
health status and the message.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "charts" / "kserve-multinode" / "files"
ISVC_SCRIPT = SCRIPTS / "argocd-health-inferenceservice.lua"
JOB_SCRIPT = SCRIPTS / "argocd-health-job.lua"
SAMPLES = Path(__file__).resolve().parent / "data" / "isvc-status"

HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What Argo CD does not open for a custom check (SkipOpenLibs without useOpenLibs).
SANDBOX = """
debug.setmetatable("", nil)
string, math, io, os, debug, coroutine = nil, nil, nil, nil, nil, nil
"""


def new_runtime() -> Any:
    lua = lua51.LuaRuntime()
    lua.execute(SANDBOX)
    return lua


def to_lua(lua: Any, value: Any) -> Any:
    """A Python value loaded from YAML/JSON as a Lua value, the way Argo CD's decodeValue builds it.

    Mappings become tables keyed by string, sequences 1-based array tables, None nothing at all.
    """
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[str(key)] = to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for index, item in enumerate(value, start=1):
            table[index] = to_lua(lua, item)
        return table
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{type(value).__name__} is not a JSON value (quote timestamps in samples): {value!r}")


def run_health(script: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of a health script for obj, evaluated as Argo CD does: a fresh state per call."""
    lua = new_runtime()
    lua.globals()["obj"] = to_lua(lua, obj)
    result = lua.execute(script.read_text())
    assert lua51.lua_type(result) == "table", f"{script.name} returned {result!r}, not a table"
    status, message = result["status"], result["message"]
    assert status in HEALTH_STATUSES, f"{script.name} returned the health status {status!r}"
    assert isinstance(message, str), f"{script.name} returned the message {message!r}"
    return status, message


def sample(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((SAMPLES / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


MULTINODE_NOT_AVAILABLE = (
    "PredictorReady is False (predictor-container: ReplicaSetUpdated, worker-container: ReplicaSetUpdated): "
    "predictor-container: Deployment does not have minimum availability., "
    "worker-container: Deployment does not have minimum availability."
)
GPU_ALLOCATION = (
    "the total required number of GPUs(4) is less than the number of GPUs assigned to the head node(1) + worker node(2)"
)
VLLM_KV_CACHE = (
    "ValueError: The model's max seq len (8192) is larger than the maximum number of tokens that can be stored in "
    "KV cache (5664). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the "
    "engine."
)

ISVC_CASES = [
    ("raw-multinode-healthy.yaml", "Healthy", "InferenceService is ready at http://huggingface-llama3-llm-serving.example.com"),
    ("raw-multinode-progressing.yaml", "Progressing", MULTINODE_NOT_AVAILABLE),
    ("no-status.yaml", "Progressing", "Waiting for InferenceService status"),
    (
        "failed-invalid-gpu-allocation.yaml",
        "Degraded",
        f"PredictorReady is False (InvalidGPUAllocation): {GPU_ALLOCATION}",
    ),
    (
        "failed-model-load.yaml",
        "Degraded",
        f"Model transition status is BlockedByFailedLoad; last failure: ModelLoadFailed: {VLLM_KV_CACHE} (exit code 1)",
    ),
    (
        "progress-deadline-exceeded.yaml",
        "Degraded",
        'PredictorReady is False (ProgressDeadlineExceeded): ReplicaSet "huggingface-llama3-predictor-6b9f7c5d8" '
        "has timed out progressing.",
    ),
    # observedGeneration is the head Deployment's, not the InferenceService's: never waited for
    ("stale-observed-generation.yaml", "Healthy",
     "InferenceService is ready at http://huggingface-llama3-llm-serving.example.com"),
    ("serverless-healthy.yaml", "Healthy", "InferenceService is ready at http://sklearn-iris.kserve-test.example.com"),
    ("stopped.yaml", "Suspended", "InferenceService is stopped"),
    (
        "recovered-stale-failure.yaml",
        "Healthy",
        "InferenceService is ready at http://huggingface-llama3-llm-serving.example.com",
    ),
    ("issue-3973-rawdeployment.yaml", "Healthy", "InferenceService is ready at http://koelectra-base-ocean.example.com"),
    ("issue-4791-default-mode.yaml", "Healthy", "InferenceService is ready at http://sklearn-iris-aiml-app.example.com"),
]

JOB_CASES = [
    ("job-complete.yaml", "Healthy", "Job completed (1 succeeded)"),
    ("job-failed-backoff.yaml", "Degraded", "BackoffLimitExceeded: Job has reached the specified backoff limit"),
    ("job-running.yaml", "Progressing", "Job in progress: 1 active, 0 succeeded, 1 failed"),
    ("job-suspended.yaml", "Suspended", "Job is suspended"),
]


def test_the_runtime_is_lua_5_1_without_the_string_library() -> None:
    lua = new_runtime()
    assert lua.eval("_VERSION") == "Lua 5.1"
    assert lua.eval("type(string)") == "nil"
    assert lua.eval("type(math)") == "nil"
    with pytest.raises(lua51.LuaError):
        lua.eval('("Ready"):sub(1, 1)')


@pytest.mark.parametrize("script", [ISVC_SCRIPT, JOB_SCRIPT], ids=lambda path: path.name)
def test_scripts_use_only_the_base_and_table_libraries(script: Path) -> None:
    code = "\n".join(line.split("--", 1)[0] for line in script.read_text().splitlines())
    assert not re.search(r"\b(string|math|os|io|debug|coroutine)\s*\.", code)
    assert not re.search(r"[\w)\]\"']\s*:\s*[A-Za-z_]\w*\s*\(", code), "method calls need the string library"


@pytest.mark.parametrize(("name", "status", "message"), ISVC_CASES, ids=[case[0] for case in ISVC_CASES])
def test_inferenceservice_health(name: str, status: str, message: str) -> None:
    assert run_health(ISVC_SCRIPT, sample(name)) == (status, message)


@pytest.mark.parametrize(
    "name", ["issue-3973-rawdeployment.yaml", "issue-4791-default-mode.yaml", "raw-multinode-healthy.yaml"]
)
def test_raw_mode_stuck_in_progressing_in_the_issues_is_healthy(name: str) -> None:
    """kserve/kserve#3973 and #4791: every child healthy, Ready True, Argo CD's bundled check Progressing.

    Raw/Standard mode never sets the Knative-only conditions (PredictorConfigurationReady,
    PredictorRouteReady, LatestDeploymentReady, RoutesReady) nor traffic; the annotation may say
    RawDeployment, Standard or nothing; Stopped=False is there from KServe 0.15.x on.
    """
    obj = sample(name)
    kinds = {c["type"] for c in obj["status"]["conditions"]}
    assert kinds <= {"IngressReady", "PredictorReady", "Ready", "Stopped"}
    assert run_health(ISVC_SCRIPT, obj)[0] == "Healthy"

    for mode in ("RawDeployment", "Standard", None):
        variant = copy.deepcopy(obj)
        annotations = variant["metadata"].setdefault("annotations", {})
        annotations.pop("serving.kserve.io/deploymentMode", None)
        if mode:
            annotations["serving.kserve.io/deploymentMode"] = mode
        assert run_health(ISVC_SCRIPT, variant)[0] == "Healthy", mode


def test_status_without_conditions_is_progressing() -> None:
    obj = sample("no-status.yaml")
    obj["status"] = {}
    assert run_health(ISVC_SCRIPT, obj) == ("Progressing", "Waiting for InferenceService status")
    obj["status"] = {"conditions": [], "modelStatus": {"transitionStatus": "InProgress"}}
    assert run_health(ISVC_SCRIPT, obj) == ("Progressing", "Waiting for InferenceService status")


def test_invalid_spec_without_conditions_is_degraded() -> None:
    obj = sample("no-status.yaml")
    obj["status"] = {
        "modelStatus": {
            "transitionStatus": "InvalidSpec",
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {"reason": "NoSupportingRuntime", "message": "Specified runtime does not support "
                                "specified framework/version"},
        }
    }
    assert run_health(ISVC_SCRIPT, obj) == (
        "Degraded",
        "Model transition status is InvalidSpec; last failure: NoSupportingRuntime: "
        "Specified runtime does not support specified framework/version",
    )


def test_last_failure_while_not_ready_is_degraded() -> None:
    """lastFailureInfo alone (transitionStatus back to InProgress between two crashes) still fails."""
    obj = sample("failed-model-load.yaml")
    obj["status"]["modelStatus"]["transitionStatus"] = "InProgress"
    assert run_health(ISVC_SCRIPT, obj) == (
        "Degraded",
        f"Last failure: ModelLoadFailed: {VLLM_KV_CACHE} (exit code 1)",
    )


@pytest.mark.parametrize(
    "reason",
    ["InvalidGPUAllocation", "InvalidWorkerSpecNotSet", "FailedCreate", "RevisionFailed", "ErrImagePull",
     "ProgressDeadlineExceeded", "CrashLoopBackOff"],
)
def test_failure_reasons_are_degraded(reason: str) -> None:
    obj = sample("raw-multinode-progressing.yaml")
    condition(obj, "PredictorReady").update(reason=reason, message="it failed")
    assert run_health(ISVC_SCRIPT, obj) == ("Degraded", f"PredictorReady is False ({reason}): it failed")


@pytest.mark.parametrize(
    "reason", ["MinimumReplicasUnavailable", "Predictor ingress not created", "", "NewReplicaSetCreated", "Fail"]
)
def test_waiting_reasons_are_progressing(reason: str) -> None:
    obj = sample("raw-multinode-progressing.yaml")
    condition(obj, "PredictorReady").update(reason=reason, message="waiting")
    expected = f"PredictorReady is False ({reason}): waiting" if reason else "PredictorReady is False: waiting"
    assert run_health(ISVC_SCRIPT, obj) == ("Progressing", expected)


def test_failure_on_ready_only_is_degraded() -> None:
    obj = sample("failed-invalid-gpu-allocation.yaml")
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] != "PredictorReady"]
    assert run_health(ISVC_SCRIPT, obj) == ("Degraded", f"Ready is False (InvalidGPUAllocation): {GPU_ALLOCATION}")


def test_ready_with_predictor_not_ready_is_progressing() -> None:
    obj = sample("raw-multinode-healthy.yaml")
    condition(obj, "PredictorReady").update(status="Unknown", reason="ReplicaSetUpdated",
                                             message='ReplicaSet "huggingface-llama3-predictor-5f8d" is progressing.')
    assert run_health(ISVC_SCRIPT, obj) == (
        "Progressing",
        'PredictorReady is Unknown (ReplicaSetUpdated): ReplicaSet "huggingface-llama3-predictor-5f8d" is progressing.',
    )


def test_observed_generation_never_holds_health_back() -> None:
    obj = sample("stale-observed-generation.yaml")
    for observed in (1, 2, 5):
        obj["status"]["observedGeneration"] = observed
        assert run_health(ISVC_SCRIPT, obj)[0] == "Healthy"
    del obj["status"]["observedGeneration"]
    assert run_health(ISVC_SCRIPT, obj)[0] == "Healthy"


def test_waiting_without_predictor_condition_reports_ready() -> None:
    obj = sample("raw-multinode-progressing.yaml")
    obj["status"]["conditions"] = [
        {"type": "Ready", "status": "Unknown", "reason": "Initializing"},
        {"type": "Stopped", "status": "False", "severity": "Info"},
    ]
    assert run_health(ISVC_SCRIPT, obj) == ("Progressing", "Ready is Unknown (Initializing)")


@pytest.mark.parametrize(("name", "status", "message"), JOB_CASES, ids=[case[0] for case in JOB_CASES])
def test_job_health(name: str, status: str, message: str) -> None:
    assert run_health(JOB_SCRIPT, sample(name)) == (status, message)


def test_job_failure_target_alone_is_degraded() -> None:
    obj = sample("job-failed-backoff.yaml")
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] == "FailureTarget"]
    obj["status"]["active"] = 1
    assert run_health(JOB_SCRIPT, obj) == (
        "Degraded",
        "BackoffLimitExceeded: Job has reached the specified backoff limit",
    )


def test_job_deadline_exceeded_is_degraded() -> None:
    obj = sample("job-running.yaml")
    obj["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                    "message": "Job was active longer than specified deadline"}]
    assert run_health(JOB_SCRIPT, obj) == (
        "Degraded",
        "DeadlineExceeded: Job was active longer than specified deadline",
    )


def test_job_suspended_by_spec_only_is_suspended() -> None:
    obj = sample("job-suspended.yaml")
    del obj["status"]
    assert run_health(JOB_SCRIPT, obj) == ("Suspended", "Job is suspended")


def test_job_without_status_is_progressing() -> None:
    obj = sample("job-running.yaml")
    del obj["status"]
    assert run_health(JOB_SCRIPT, obj) == ("Progressing", "Job in progress: 0 active, 0 succeeded")


def test_completed_job_stays_healthy_when_suspended_afterwards() -> None:
    obj = sample("job-complete.yaml")
    obj["spec"]["suspend"] = True
    assert run_health(JOB_SCRIPT, obj) == ("Healthy", "Job completed (1 succeeded)")
