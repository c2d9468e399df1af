"""Stage 6, check: the rendered bundle of a whole environment, before anything is written.

These checks look at objects, not values: what KServe's admission webhooks and the
API server would refuse, and what only shows when releases meet (two objects with
one name, two models on one path). A failure is a `CheckError` listing every finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from generator.errors import CheckError, Finding
from generator.plan import TP_ENV, Plan
from generator.render import RenderedFile

HF_TOKEN = re.compile(r"hf_[A-Za-z]{34}")


def check(out_dir: str, plans: Sequence[Plan], files: Sequence[RenderedFile]) -> None:
    findings: list[Finding] = []
    findings += _unique_objects(out_dir, files)
    findings += _shared_storage(plans)
    for plan in plans:
        own = [f for f in files if f.path.startswith(plan.release + "/")]
        findings += _admission(out_dir, plan, own)
        findings += _references(out_dir, plan, own, files, plans)
    findings += _no_tokens(out_dir, files)
    if findings:
        raise CheckError(findings)


def _objects(files: Iterable[RenderedFile]) -> Iterable[tuple[RenderedFile, dict[str, Any]]]:
    return ((f, f.obj) for f in files if f.obj is not None)


def _unique_objects(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    seen: dict[tuple[str, str, str], str] = {}
    findings = []
    for file, obj in _objects(files):
        meta = obj.get("metadata") or {}
        ident = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
        if ident in seen:
            findings.append(Finding(f"{out_dir}/{file.path}", "/metadata/name",
                                    f"{ident[0]} {ident[1]}/{ident[2]} is also defined in {out_dir}/{seen[ident]}"))
        else:
            seen[ident] = file.path
    return findings


def _shared_storage(plans: Sequence[Plan]) -> list[Finding]:
    """Two releases may share a claim, but not a model path with different models."""
    owner: dict[tuple[str, str, str], Plan] = {}
    findings = []
    for plan in plans:
        if plan.claim is None:
            continue
        where = (plan.namespace, plan.claim, plan.model_path)
        other = owner.setdefault(where, plan)
        if other is not plan and other.marker != plan.marker:
            findings.append(Finding(plan.release, "/model/storageUri",
                                    f"{plan.storage_uri} also holds {other.marker} of release {other.release}; "
                                    "give each model its own path"))
    return findings


def _env_names(container: dict[str, Any]) -> set[str]:
    return {e.get("name", "") for e in container.get("env") or []}


def _admission(out_dir: str, plan: Plan, files: Sequence[RenderedFile]) -> list[Finding]:
    """The multi-node rules of KServe's webhooks (reference §6), applied to the objects."""
    findings = []
    kserve = plan.kserve
    for file, obj in _objects(files):
        where = f"{out_dir}/{file.path}"
        kind = obj["kind"]
        if kind == "InferenceService":
            annotations = obj["metadata"].get("annotations") or {}
            if annotations.get("serving.kserve.io/autoscalerClass") != kserve.autoscaler_class:
                findings.append(Finding(where, "/metadata/annotations", f"multi-node needs "
                                        f"serving.kserve.io/autoscalerClass: {kserve.autoscaler_class}"))
            predictor = obj["spec"]["predictor"]
            findings += _parallel_spec(where, "/spec/predictor/workerSpec", predictor.get("workerSpec") or {}, plan)
            model = predictor.get("model") or {}
            if _env_names(model) & {TP_ENV, "PIPELINE_PARALLEL_SIZE"}:
                findings.append(Finding(where, "/spec/predictor/model/env",
                                        "TENSOR_PARALLEL_SIZE / PIPELINE_PARALLEL_SIZE are refused by KServe "
                                        "0.15+; use workerSpec.tensorParallelSize / pipelineParallelSize"))
            uri = str(model.get("storageUri", ""))
            if not (uri.startswith("pvc://") or (kserve.oci_storage and uri.startswith("oci://"))):
                findings.append(Finding(where, "/spec/predictor/model/storageUri",
                                        f"multi-node storage must be pvc:// here; got {uri!r}"))
        elif kind == "ServingRuntime":
            findings += _parallel_spec(where, "/spec/workerSpec", obj["spec"].get("workerSpec") or {}, plan)
            head = obj["spec"]["containers"][0]
            if head.get("name") != "kserve-container" or _env_names(head) & {TP_ENV, "PIPELINE_PARALLEL_SIZE"}:
                findings.append(Finding(where, "/spec/containers/0",
                                        "the head container must be kserve-container without TP/PP env"))
    return findings


def _parallel_spec(where: str, path: str, worker_spec: dict[str, Any], plan: Plan) -> list[Finding]:
    findings = []
    containers = worker_spec.get("containers") or []
    if len(containers) > 1:
        findings.append(Finding(where, f"{path}/containers", "workerSpec allows one container"))
    if containers and containers[0].get("name") != "worker-container":
        findings.append(Finding(where, f"{path}/containers/0/name", "the worker container must be worker-container"))
    if worker_spec.get("pipelineParallelSize", 0) < plan.kserve.min_pipeline:
        findings.append(Finding(where, f"{path}/pipelineParallelSize",
                                f"KServe {plan.kserve.version} needs at least {plan.kserve.min_pipeline}"))
    if worker_spec.get("tensorParallelSize", 0) < plan.kserve.min_tensor:
        findings.append(Finding(where, f"{path}/tensorParallelSize", "must be at least 1"))
    return findings


def _references(out_dir: str, plan: Plan, own: Sequence[RenderedFile], files: Sequence[RenderedFile],
                plans: Sequence[Plan]) -> list[Finding]:
    """The claim and the runtime an InferenceService names exist in the bundle or are declared existing."""
    findings = []
    names = {(str(obj["kind"]), str(obj["metadata"].get("name"))) for _, obj in _objects(files)}
    existing_claims = {p.claim for p in plans if p.claim and not p.pvc_create and p.namespace == plan.namespace}
    for file, obj in _objects(own):
        if obj["kind"] != "InferenceService":
            continue
        where = f"{out_dir}/{file.path}"
        if plan.claim and ("PersistentVolumeClaim", plan.claim) not in names and plan.claim not in existing_claims:
            findings.append(Finding(where, "/spec/predictor/model/storageUri",
                                    f"claim {plan.claim!r} is neither in the bundle nor declared existing"))
        if plan.runtime_create and ("ServingRuntime", plan.runtime_name) not in names:
            findings.append(Finding(where, "/spec/predictor/model/runtime",
                                    f"runtime {plan.runtime_name!r} is not in the bundle"))
    return findings


def _no_tokens(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    return [Finding(f"{out_dir}/{f.path}", "", "contains what looks like a Hugging Face token (hf_...); "
                    "tokens belong in a Secret, referenced by name") for f in files if HF_TOKEN.search(f.text)]
