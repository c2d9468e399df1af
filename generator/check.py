"""Stage 6, check: the rendered bundle of a whole environment, before anything is written.

These checks look at objects, not values: what KServe's admission webhooks and the
API server would refuse, and what only shows when releases meet (two objects with
one name, two models on one path). A failure is a `CheckError` listing every finding.

`check_release` reads the objects and texts of one release right after it is rendered (the
pipeline then writes them away); `check_bundle` works on the names of the whole bundle, so a
fleet of releases is checked in linear time and bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import layout, podsecurity
from generator.errors import CheckError, Finding
from generator.names import is_label, is_subdomain, label_problem
from generator.plan import Plan
from generator.releases import AUTOSCALER_CLASS, PP_ENV, TP_ENV
from generator.render import RenderedFile
from generator.secrets import HF_TOKEN

if TYPE_CHECKING:
    from generator.crds import SchemaSources



@dataclass(frozen=True)
class SchemaCheck:
    """What the kubeconform step needs: where schemas come from, and where to look for the binary
    (found only when the step runs, so a values error is never hidden behind a missing tool)."""

    sources: SchemaSources
    tool_roots: tuple[Path, ...]


def check(out_dir: str, plans: Sequence[Plan], files: Sequence[RenderedFile]) -> None:
    """Raise `CheckError` with every finding of the checks below (not the schema check)."""
    by_release = _by_release(plans, files)
    findings = [f for plan in plans for f in check_release(out_dir, plan, by_release[plan.release])]
    releases = {plan.release for plan in plans}
    findings += no_tokens(out_dir, [f for f in files if f.path.split("/", 1)[0] not in releases])
    findings += check_bundle(out_dir, plans, files)
    if findings:
        raise CheckError(findings)


def check_release(out_dir: str, plan: Plan, files: Sequence[RenderedFile]) -> list[Finding]:
    """The checks that read the objects and texts of one release."""
    return [*_admission(out_dir, plan, files), *_secret_reference(out_dir, plan, files),
            *_names_and_labels(out_dir, files), *_pod_security(out_dir, files), *no_tokens(out_dir, files)]


def check_bundle(out_dir: str, plans: Sequence[Plan], files: Sequence[RenderedFile]) -> list[Finding]:
    """The checks across releases, on object names (the files' texts may be gone: written away)."""
    return [*_unique_objects(out_dir, files), *_shared_storage(plans), *_references(out_dir, plans, files)]


def _by_release(plans: Sequence[Plan], files: Sequence[RenderedFile]) -> dict[str, list[RenderedFile]]:
    grouped: dict[str, list[RenderedFile]] = {plan.release: [] for plan in plans}
    for f in files:
        release = f.path.split("/", 1)[0]
        if release in grouped:
            grouped[release].append(f)
    return grouped


def _objects(files: Iterable[RenderedFile]) -> Iterable[tuple[RenderedFile, dict[str, Any]]]:
    return ((f, f.obj) for f in files if f.obj is not None)


def _unique_objects(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    seen: dict[tuple[str, str, str], str] = {}
    findings = []
    for file in files:
        ident = file.key
        if ident is None:
            continue
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
        if plan.storage.claim is None:
            continue
        where = (plan.namespace, plan.storage.claim, plan.storage.path)
        other = owner.setdefault(where, plan)
        if other is not plan and other.marker != plan.marker:
            findings.append(Finding(plan.release, "/model/storageUri",
                                    f"{plan.storage.uri} also holds {other.marker} of release {other.release}; "
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
            if annotations.get(AUTOSCALER_CLASS) != kserve.autoscaler_class:
                findings.append(Finding(where, "/metadata/annotations", f"multi-node needs "
                                        f"{AUTOSCALER_CLASS}: {kserve.autoscaler_class}"))
            predictor = obj["spec"]["predictor"]
            findings += _parallel_spec(where, "/spec/predictor/workerSpec", predictor.get("workerSpec") or {}, plan)
            model = predictor.get("model") or {}
            if _env_names(model) & {TP_ENV, PP_ENV}:
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
            if head.get("name") != "kserve-container" or _env_names(head) & {TP_ENV, PP_ENV}:
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


def _references(out_dir: str, plans: Sequence[Plan], files: Sequence[RenderedFile]) -> list[Finding]:
    """The claim and the runtime an InferenceService names exist in the bundle or are declared existing."""
    findings = []
    names = {(f.key[0], f.key[1], f.key[2]) for f in files if f.key is not None}
    existing_claims = {(p.namespace, p.storage.claim) for p in plans if p.storage.claim and not p.storage.create}
    by_release = _by_release(plans, files)
    for plan in plans:
        for file in by_release[plan.release]:
            if file.key is None or file.key[0] != "InferenceService":
                continue
            where = f"{out_dir}/{file.path}"
            claim = plan.storage.claim
            if claim and ("PersistentVolumeClaim", plan.namespace, claim) not in names and \
                    (plan.namespace, claim) not in existing_claims:
                findings.append(Finding(where, "/spec/predictor/model/storageUri",
                                        f"claim {claim!r} is neither in the bundle nor declared existing"))
            if plan.runtime.create and ("ServingRuntime", plan.namespace, plan.runtime.name) not in names:
                findings.append(Finding(where, "/spec/predictor/model/runtime",
                                        f"runtime {plan.runtime.name!r} is not in the bundle"))
    return findings


def _pod_security(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    runtimes = {str(obj["metadata"]["name"]): obj for _, obj in _objects(files) if obj["kind"] == "ServingRuntime"}
    return [finding for file, obj in _objects(files)
            for finding in podsecurity.findings(f"{out_dir}/{file.path}", obj, runtimes)]


def _names_and_labels(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    """Object names and labels within Kubernetes limits, on objects and their pod templates."""
    findings = []
    for file, obj in _objects(files):
        where = f"{out_dir}/{file.path}"
        name = str(obj["metadata"].get("name", ""))
        short = layout.KINDS[obj["kind"]].dns_label
        if (short and not is_label(name)) or not is_subdomain(name):
            limit = "a DNS-1123 label of at most 63 characters" if short else "a DNS-1123 subdomain"
            findings.append(Finding(where, "/metadata/name", f"{obj['kind']} name {name!r} must be {limit}"))
        for path, labels in _label_maps(obj):
            for key, value in (labels or {}).items():
                problem = _label_problem(str(key), str(value))
                if problem:
                    findings.append(Finding(where, f"{path}/{key.replace('~', '~0').replace('/', '~1')}", problem))
    return findings


_label_problem = lru_cache(maxsize=4096)(label_problem)    # a fleet's releases repeat most of their labels


def _label_maps(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    maps = [("/metadata/labels", obj["metadata"].get("labels"))]
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        maps.append(("/spec/template/metadata/labels", (template.get("metadata") or {}).get("labels")))
    return maps


def _secret_reference(out_dir: str, plan: Plan, files: Sequence[RenderedFile]) -> list[Finding]:
    """The download Job reads the token from exactly the Secret the values name; other Jobs read none."""
    findings = []
    secret = plan.download.token_secret if plan.download else None
    for file, obj in _objects(files):
        if obj["kind"] != "Job":
            continue
        download = (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "model-download"
        wanted = (secret.name, secret.key) if secret and download else None
        for container in obj["spec"]["template"]["spec"]["containers"]:
            refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                    for e in container.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}
            if refs != ({wanted} if wanted else set()):
                what = "download.tokenSecret" if download else "none (only the download reads a Secret)"
                findings.append(Finding(f"{out_dir}/{file.path}", "/spec/template/spec/containers",
                                        f"Secret references {sorted(refs)} differ from {what}"
                                        + (f" {wanted}" if download else "")))
    return findings


def no_tokens(out_dir: str, files: Sequence[RenderedFile]) -> list[Finding]:
    return [Finding(f"{out_dir}/{f.path}", "", "contains what looks like a Hugging Face token (hf_...); "
                    "tokens belong in a Secret, referenced by name") for f in files if HF_TOKEN.search(f.text)]
