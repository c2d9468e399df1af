"""llmpack's render-time rules are equal to or stricter than KServe's admission.

For each case of tests/test_rejections.py that breaks a KServe rule (and the KServe rules
llmpack enforces by construction: TP/PP variables, autoscalerClass, one worker container...),
the test takes llmpack's valid bundle, makes the minimal edit the case would have produced
without llmpack's check, and creates it on the real API server with the real webhooks. It
records where the bundle is refused (webhook or API server) and, when KServe admits it, what
the controller then made of it (llmpack is stricter there). llmpack's own refusal of the case
is shown by its CLI (a located error).

PROBES go the other way: values llmpack accepts, rendered by llmpack and created unchanged
(only renamed). A probe KServe refuses is a rule llmpack does not catch at render time: a
finding, and the test fails.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from bundles import Renders, environments, is_located, versions
from install import KServe
from kube import ApiError
from reconcile import Deployed
from report import AdmissionRow, Report, Say
from scenarios import Outcome, Pair, base_pair, clean, create, outcomes

from generator.releases import RELEASES, KServeRelease

NAMESPACE = "conformance-admission"
Edit = Callable[[Pair, KServeRelease], None]


@dataclass(frozen=True)
class Case:
    id: str                          # as in tests/test_rejections.py where llmpack refuses it there
    edit: Edit
    llmpack: tuple[str, ...] | str   # --set values llmpack refuses, or how it prevents the case
    because: str = ""                # part of llmpack's message: it refuses for this reason
    must_reject: bool = False        # kserve-multinode.md §6 says KServe refuses it: the test asserts so
    when: Callable[[KServeRelease], bool] = lambda r: True


def _set(path: str, value: Any) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        *parents, leaf = path.split(".")
        target: Any = pair.isvc if parents[0] == "isvc" else pair.runtime
        for key in parents[1:]:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return edit


def _model_env(name: str, **value: Any) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        pair.model.setdefault("env", []).append({"name": name, **value})
    return edit


def _runtime_env(name: str, value: str) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        pair.runtime["spec"]["containers"][0].setdefault("env", []).append({"name": name, "value": value})
    return edit


def _gpu_name(resource: str) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        for resources in (pair.model["resources"], pair.worker["containers"][0]["resources"]):
            for kind in ("requests", "limits"):
                resources[kind][resource] = resources[kind].pop("nvidia.com/gpu")
    return edit


def _rename(name: str) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        pair.isvc["metadata"]["name"] = name
    return edit


def _annotation(key: str, value: str | None) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        annotations = pair.isvc["metadata"].setdefault("annotations", {})
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    return edit


def _second_worker_container(of: str) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        spec = pair.isvc["spec"]["predictor"]["workerSpec"] if of == "isvc" else pair.runtime["spec"]["workerSpec"]
        spec["containers"].append({**copy.deepcopy(spec["containers"][0]), "name": "second-container"})
    return edit


def _cpu_request(value: str) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        pair.model["resources"]["requests"]["cpu"] = value
    return edit


def _shm(size: str) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        for spec in (pair.runtime["spec"], pair.runtime["spec"]["workerSpec"]):
            for volume in spec["volumes"]:
                if volume["name"] == "shm":
                    volume["emptyDir"]["sizeLimit"] = size
    return edit


def _head_gpus(count: str) -> Edit:
    def edit(pair: Pair, release: KServeRelease) -> None:
        for kind in ("requests", "limits"):
            pair.model["resources"][kind]["nvidia.com/gpu"] = count
    return edit


LONG_NAME = "a-name-that-is-far-too-long-for-kserve-labels-x"
BY_CONSTRUCTION = "never emitted: llmpack translates the seed's variables into workerSpec sizes"
CASES = [
    # the cases of tests/test_rejections.py that break a KServe (or Kubernetes) rule
    Case("name-too-long", _rename(LONG_NAME), (f"name={LONG_NAME}",), "at most 41 characters"),
    Case("name-not-dns", _rename("Llama_3"), ("name=Llama_3",), "at most 41 characters of a-z", must_reject=True),
    Case("storage-not-pvc", _set("isvc.spec.predictor.model.storageUri", "s3://bucket/llama"),
         ("model.storageUri=s3://bucket/llama",), "storageUri must be", must_reject=True),
    Case("storage-oci-before-0.16", _set("isvc.spec.predictor.model.storageUri", "oci://reg/llama:1"),
         ("model.storageUri=oci://reg/llama:1", "download.enabled=false", "pvc.create=false"), "oci:// needs",
         must_reject=True, when=lambda r: not r.oci_storage),
    Case("storage-pvc-without-path", _set("isvc.spec.predictor.model.storageUri", "pvc://claim-only"),
         ("model.storageUri=pvc://claim-only",), "storageUri must be"),
    Case("storage-path-escapes", _set("isvc.spec.predictor.model.storageUri", "pvc://models/../etc"),
         ("model.storageUri=pvc://models/../etc",), "without '..'"),
    Case("two-heads", lambda p, r: p.isvc["spec"]["predictor"].update(minReplicas=2, maxReplicas=2),
         ("predictor.minReplicas=2", "predictor.maxReplicas=2"), "exactly one head pod"),
    Case("triton", _set("isvc.spec.predictor.model.modelFormat", {"name": "triton"}), ("model.format=triton",),
         "Triton cannot serve multi-node"),
    Case("not-huggingface", _set("isvc.spec.predictor.model.modelFormat", {"name": "sklearn"}),
         ("model.format=sklearn",), "is not supported"),
    Case("pp-below-minimum-0.15.0", _set("isvc.spec.predictor.workerSpec.pipelineParallelSize", 1),
         ('model.env=[{name: PIPELINE_PARALLEL_SIZE, value: "1"}]',), "at least 2", must_reject=True,
         when=lambda r: r.min_pipeline > 1),
    Case("pp-zero", _set("isvc.spec.predictor.workerSpec.pipelineParallelSize", 0),
         ('model.env=[{name: PIPELINE_PARALLEL_SIZE, value: "0"}]',), "at least 1", must_reject=True),
    Case("tp-zero", _set("isvc.spec.predictor.workerSpec.tensorParallelSize", 0),
         ('model.env=[{name: TENSOR_PARALLEL_SIZE, value: "0"}]',), "at least 1", must_reject=True),
    Case("tp-not-a-number", _set("isvc.spec.predictor.workerSpec.tensorParallelSize", "two"),
         ('model.env=[{name: TENSOR_PARALLEL_SIZE, value: "two"}]',), "whole number", must_reject=True),
    Case("tp-from-secret", _model_env("TENSOR_PARALLEL_SIZE", valueFrom={"configMapKeyRef": {"name": "a", "key": "b"}}),
         ("model.env=[{name: TENSOR_PARALLEL_SIZE, valueFrom: {configMapKeyRef: {name: a, key: b}}}]",),
         "must be a literal value", must_reject=True),
    Case("controller-env", _model_env("RAY_NODE_COUNT", value="3"),
         ('model.env=[{name: RAY_NODE_COUNT, value: "3"}]',), "set by the KServe controller"),
    Case("unknown-gpu", _gpu_name("example.com/gpu"), ("gpu.resourceName=example.com/gpu",),
         "unknown GPU resource", must_reject=True),
    Case("python-path-blocked", _model_env("PYTHONPATH", value="/opt/extra"),
         ("model.env=[{name: PYTHONPATH, value: /opt/extra}]",), "not allowed for security reasons",
         must_reject=True, when=lambda r: bool(r.blocked_env)),
    Case("gpu-in-resources", _head_gpus("2"), ('model.resources.limits.nvidia\\.com/gpu="2"',),
         "GPUs are set by llmpack"),
    Case("request-above-limit", _cpu_request("64"), ('model.resources.requests.cpu="64"',), "above the limit"),
    Case("shm-above-memory", _shm("2Ti"), ("shm.sizeLimit=2Ti",), "memory-backed"),
    # KServe rules llmpack meets by construction (nothing in values can produce these)
    Case("tp-env-on-predictor", _model_env("TENSOR_PARALLEL_SIZE", value="2"), BY_CONSTRUCTION, must_reject=True),
    Case("pp-env-on-predictor", _model_env("PIPELINE_PARALLEL_SIZE", value="2"), BY_CONSTRUCTION, must_reject=True),
    Case("tp-env-on-runtime", _runtime_env("TENSOR_PARALLEL_SIZE", "2"), BY_CONSTRUCTION, must_reject=True),
    Case("autoscaler-class-missing", _annotation("serving.kserve.io/autoscalerClass", None),
         "always set, to the release's value", must_reject=True),
    Case("autoscaler-class-of-another-release",
         lambda p, r: p.isvc["metadata"]["annotations"].update(
             {"serving.kserve.io/autoscalerClass": "none" if r.autoscaler_class == "external" else "external"}),
         "always set, to the release's value", must_reject=True),
    Case("worker-two-containers", _second_worker_container("isvc"), "one worker container, always",
         must_reject=True),
    Case("runtime-worker-two-containers", _second_worker_container("runtime"), "one worker container, always",
         must_reject=True),
    Case("seed-worker-size-field", _set("isvc.spec.predictor.workerSpec.size", 1),
         "never emitted: workerSpec.size becomes pipelineParallelSize", must_reject=True),
    Case("deployment-mode-missing", _annotation("serving.kserve.io/deploymentMode", None),
         "always set, to the release's value"),
]

# Values llmpack accepts; KServe must accept the bundle llmpack renders from them.
PROBES = {
    "python-path-env": ("model.env=[{name: PYTHONPATH, value: /opt/extra}]",),
    "custom-gpu-resource": ("gpu.resourceName=example.com/gpu", 'gpu.customResourceTypes=["example.com/gpu"]'),
    "oci-storage": ("model.storageUri=oci://registry.example/llama:1", "download.enabled=false", "pvc.create=false"),
    "pipeline-parallel-1": ('model.env=[{name: PIPELINE_PARALLEL_SIZE, value: "1"}]',),
}


@dataclass(frozen=True)
class Verdict:
    refused: ApiError | None           # KServe's (or the API server's) refusal
    outcome: Outcome | None            # what the controller made of an admitted bundle
    llmpack_refusal: str | None = None  # a probe llmpack itself refuses for this release

    def kserve(self) -> str:
        if self.refused is not None:
            where = "webhook" if "admission webhook" in self.refused.message else "API server"
            return f"refused by the {where} ({self.refused.status})"
        return f"admitted; controller {self.outcome.summary()}" if self.outcome else "not applied"

    def message(self) -> str:
        return self.refused.message if self.refused else self.outcome.summary() if self.outcome else ""


def base_env() -> str:
    return environments()[0]


@pytest.fixture(scope="session")
def admission(version: str, kserve: KServe, deployed: Deployed, renders: Renders, say: Say) -> dict[str, Verdict]:
    """Every case and probe of this release, created at once, then the controller's verdicts."""
    began = time.monotonic()
    release = RELEASES[version]
    probes = {probe: renders.get_future(base_env(), "kserve", version, sets) for probe, sets in PROBES.items()}
    pairs: dict[str, Pair] = {}
    for case in CASES:
        if case.when(release):
            pair = base_pair(deployed.kserve[base_env()], f"a-{case.id.replace('.', '-')}"[:41], NAMESPACE)
            case.edit(pair, release)
            pairs[case.id] = pair
    refused_by_llmpack = {}
    for probe, future in probes.items():
        rendered = future.result()
        if rendered.refusal is None:
            pairs[probe] = base_pair(rendered, f"p-{probe}", NAMESPACE)
        else:
            refused_by_llmpack[probe] = rendered.refusal
    refusals = {case: create(kserve.kube, pair) for case, pair in pairs.items()}
    seen = outcomes(kserve.kube, [pair for case, pair in pairs.items() if refusals[case] is None])
    clean(kserve.kube, NAMESPACE)
    say(f"KServe {release.patch}: {len(pairs)} admission cases and probes in {time.monotonic() - began:.0f} s")
    verdicts = {case: Verdict(refusals[case], None if refusals[case] else seen[pair.name])
                for case, pair in pairs.items()}
    return verdicts | {probe: Verdict(None, None, refusal) for probe, refusal in refused_by_llmpack.items()}


@pytest.fixture(scope="session")
def llmpack_refusals(renders: Renders) -> dict[str, str | None]:
    """llmpack's own answer to each case, from its CLI (for the newest release the case applies to)."""
    futures = {}
    for case in CASES:
        if isinstance(case.llmpack, tuple):
            version = next(v for v in reversed(versions()) if case.when(RELEASES[v]))
            futures[case.id] = renders.get_future(base_env(), "kserve", version, case.llmpack)
    return {case: future.result().refusal for case, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("version", versions(), scope="session")
def test_kserve_rule(version: str, case: Case, admission: dict[str, Verdict],
                     llmpack_refusals: dict[str, str | None], report: Report) -> None:
    release = RELEASES[version]
    if not case.when(release):
        pytest.skip(f"not a rule of KServe {release.patch}")
    verdict = admission[case.id]
    if isinstance(case.llmpack, tuple):
        refusal = llmpack_refusals[case.id]
        assert refusal is not None, f"llmpack renders {case.llmpack} without complaint"
        assert is_located(refusal) and case.because in refusal, refusal
        reason = next(line for line in refusal.splitlines() if case.because in line)
        llmpack = "refuses: " + reason[reason.index("--set"):]   # from where it points at
    else:
        llmpack = case.llmpack
    report.admission.append(AdmissionRow(release.patch, case.id, llmpack,
                                         verdict.kserve(), "llmpack stricter" if verdict.refused is None else "equal",
                                         verdict.message()))
    if case.must_reject:
        assert verdict.refused is not None, (
            f"KServe {release.patch} admitted {case.id}, which kserve-multinode.md §6 says it refuses: "
            f"{verdict.kserve()}")


@pytest.mark.parametrize("probe", sorted(PROBES))
@pytest.mark.parametrize("version", versions(), scope="session")
def test_what_llmpack_accepts_kserve_accepts(version: str, probe: str, admission: dict[str, Verdict],
                                            report: Report) -> None:
    release = RELEASES[version]
    verdict = admission[probe]
    if verdict.llmpack_refusal is not None:
        assert is_located(verdict.llmpack_refusal), verdict.llmpack_refusal
        report.admission.append(AdmissionRow(release.patch, f"probe {probe}", "refuses", "-", "not applicable",
                                             verdict.llmpack_refusal.splitlines()[-1].strip()))
        pytest.skip(f"llmpack refuses it for {release.patch}")
    report.admission.append(AdmissionRow(release.patch, f"probe {probe}", "renders it", verdict.kserve(),
                                         "NOT CAUGHT by llmpack" if verdict.refused else "ok", verdict.message()))
    assert verdict.refused is None, (
        f"llmpack renders {PROBES[probe]} for KServe {release.patch}, but KServe refuses the bundle: "
        f"{verdict.message()}")
