"""Stage 6, check: the rendered bundle of a whole environment, before anything is written.

These checks look at objects, not values: what KServe's admission webhooks and the
API server would refuse, and what only shows when releases meet (two objects with
one name, two models on one path). A failure is a `CheckError` listing every finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import CheckError, Finding
from generator.plan import DNS_LABEL, DNS_SUBDOMAIN, TP_ENV, Plan, label_problem
from generator.render import RenderedFile

if TYPE_CHECKING:
    from generator.schemas import SchemaSources

HF_TOKEN = re.compile(r"hf_[A-Za-z]{34}")
# kinds whose names become label values or DNS labels: at most 63 characters
SHORT_NAMES = ("Job", "Service", "Deployment", "InferenceService")


@dataclass(frozen=True)
class SchemaCheck:
    """What the kubeconform step needs: where schemas come from, and where to look for the binary
    (found only when the step runs, so a values error is never hidden behind a missing tool)."""

    sources: SchemaSources
    tool_roots: tuple[Path, ...]


def check(out_dir: str, plans: Sequence[Plan], files: Sequence[RenderedFile],
          schemas: SchemaCheck | None = None) -> None:
    """Raise `CheckError` with every finding; `schemas=None` skips kubeconform (never by default)."""
    findings: list[Finding] = []
    findings += _unique_objects(out_dir, files)
    findings += _shared_storage(plans)
    for plan in plans:
        own = [f for f in files if f.path.startswith(plan.release + "/")]
        findings += _admission(out_dir, plan, own)
        findings += _references(out_dir, plan, own, files, plans)
        findings += _secret_reference(out_dir, plan, own)
    findings += _names_and_labels(out_dir, files)
    findings += _no_tokens(out_dir, files)
    if schemas is not None:
        findings += _schema_findings(out_dir, plans, files, schemas)
    if findings:
        raise CheckError(findings)


def _schema_findings(out_dir: str, plans: Sequence[Plan], files: Sequence[RenderedFile],
                     schemas: SchemaCheck) -> list[Finding]:
    """One kubeconform run per (KServe release, Kubernetes version); normally one per environment."""
    from generator import kubeconform
    from generator.schemas import schema_set

    groups: dict[tuple[str | None, str], list[tuple[str, str]]] = {}
    for plan in plans:
        own = [f for f in files if f.obj is not None and f.path.startswith(plan.release + "/")]
        uses_kserve = any(str(f.obj["apiVersion"]).startswith("serving.kserve.io/") for f in own if f.obj)
        key = (plan.kserve.patch if uses_kserve else None, plan.kubernetes_version)
        groups.setdefault(key, []).extend((f"{out_dir}/{f.path}", f.text) for f in own)
    releases = tuple(f"{plan.release}/" for plan in plans)
    environment = [(f"{out_dir}/{f.path}", f.text) for f in files
                   if f.obj is not None and not f.path.startswith(releases)]
    if environment and plans:   # the GitOps objects: core kinds and the Argo CD / Flux CRDs
        groups.setdefault((None, plans[0].kubernetes_version), []).extend(environment)
    findings = []
    binary = kubeconform.find(*schemas.tool_roots)
    for (patch, kubernetes_version), group in sorted(groups.items(), key=lambda item: (item[0][0] or "", item[0][1])):
        found = schema_set(schemas.sources, patch, kubernetes_version)
        findings += kubeconform.validate(binary, found, group)
    return findings


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
    for key, minimum in (("pipelineParallelSize", plan.kserve.min_pipeline),
                         ("tensorParallelSize", plan.kserve.min_tensor)):
        size = worker_spec.get(key, 0)
        if isinstance(size, int) and size < minimum:   # other types: kubeconform reports them
            findings.append(Finding(where, f"{path}/{key}", f"KServe {plan.kserve.version} needs at least {minimum}"))
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


def _names_and_labels(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    """Object names and labels within Kubernetes limits, on objects and their pod templates."""
    findings = []
    for file, obj in _objects(files):
        where = f"{out_dir}/{file.path}"
        name = str(obj["metadata"].get("name", ""))
        short = obj["kind"] in SHORT_NAMES
        if (short and (len(name) > 63 or not DNS_LABEL.fullmatch(name))) or \
                len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name):
            limit = "a DNS-1123 label of at most 63 characters" if short else "a DNS-1123 subdomain"
            findings.append(Finding(where, "/metadata/name", f"{obj['kind']} name {name!r} must be {limit}"))
        for path, labels in _label_maps(obj):
            for key, value in (labels or {}).items():
                problem = label_problem(str(key), str(value))
                if problem:
                    findings.append(Finding(where, f"{path}/{key.replace('~', '~0').replace('/', '~1')}", problem))
    return findings


def _label_maps(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    maps = [("/metadata/labels", obj["metadata"].get("labels"))]
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        maps.append(("/spec/template/metadata/labels", (template.get("metadata") or {}).get("labels")))
    return maps


def _secret_reference(out_dir: str, plan: Plan, files: Sequence[RenderedFile]) -> list[Finding]:
    """The download Job reads the token from exactly the Secret the values name."""
    findings = []
    for file, obj in _objects(files):
        if obj["kind"] != "Job":
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                    for e in container.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}
            expected = {plan.token_secret} if plan.token_secret else set()
            if refs != expected:
                findings.append(Finding(f"{out_dir}/{file.path}", "/spec/template/spec/containers",
                                        f"Secret references {sorted(refs)} differ from download.tokenSecret "
                                        f"{plan.token_secret}"))
    return findings


def _no_tokens(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    return [Finding(f"{out_dir}/{f.path}", "", "contains what looks like a Hugging Face token (hf_...); "
                    "tokens belong in a Secret, referenced by name") for f in files if HF_TOKEN.search(f.text)]
