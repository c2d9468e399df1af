"""Bundle-wide checks no schema can do, on objects built by hand (the chart cannot produce them)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from generator import emit
from generator.check import check
from generator.errors import CheckError
from generator.pipeline import build
from generator.render import RenderedFile
from helpers import ProjectFactory


def edited(files: tuple[RenderedFile, ...], name: str, change: Any) -> list[RenderedFile]:
    out = []
    for f in files:
        obj = f.obj
        if f.path.endswith(name) and obj is not None:
            obj = change(obj) or obj
            f = RenderedFile.of(f.path, emit.dump(obj), obj)
        out.append(f)
    return out


def findings(make_project: ProjectFactory, name: str, change: Any, values: str = "") -> list[str]:
    bundle = build(make_project(values), "test")
    with pytest.raises(CheckError) as caught:
        check("rendered/test", bundle.plans, edited(bundle.files, name, change))
    return [str(f) for f in caught.value.findings]


def test_secret_reference_must_match_the_values(make_project: ProjectFactory) -> None:
    def other_secret(job: dict[str, Any]) -> None:
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        next(e for e in env if e["name"] == "HF_TOKEN")["valueFrom"]["secretKeyRef"]["name"] = "other"

    assert findings(make_project, "download-job.yaml", other_secret) == [
        "rendered/test/huggingface-llama3/download/download-job.yaml: /spec/template/spec/containers: Secret "
        "references [('other', 'HF_TOKEN')] differ from download.tokenSecret ('hf-token', 'HF_TOKEN')"]


def test_label_values_within_kubernetes_limits(make_project: ProjectFactory) -> None:
    def long_label(pvc: dict[str, Any]) -> None:
        pvc["metadata"]["labels"]["team"] = "x" * 64

    assert findings(make_project, "persistentvolumeclaim.yaml", long_label) == [
        "rendered/test/huggingface-llama3/storage/persistentvolumeclaim.yaml: /metadata/labels/team: label values "
        "are at most 63 characters of A-Z a-z 0-9 - _ . (alphanumeric at both ends)"]


def test_job_names_are_dns_labels(make_project: ProjectFactory) -> None:
    def long_name(job: dict[str, Any]) -> None:
        job["metadata"]["name"] = "j" * 64

    assert findings(make_project, "download-job.yaml", long_name) == [
        f"rendered/test/huggingface-llama3/download/download-job.yaml: /metadata/name: Job name '{'j' * 64}' must be a "
        "DNS-1123 label of at most 63 characters"]


def test_runtime_and_claim_must_exist(make_project: ProjectFactory) -> None:
    bundle = build(make_project(""), "test")
    kept = [f for f in bundle.files if not f.path.endswith(("servingruntime.yaml", "persistentvolumeclaim.yaml"))]
    with pytest.raises(CheckError) as caught:
        check("rendered/test", bundle.plans, kept)
    assert [str(f) for f in caught.value.findings] == [
        "rendered/test/huggingface-llama3/serving/inferenceservice.yaml: /spec/predictor/model/storageUri: claim "
        "'llama-3-8b-pvc' is neither in the bundle nor declared existing",
        "rendered/test/huggingface-llama3/serving/inferenceservice.yaml: /spec/predictor/model/runtime: runtime "
        "'huggingface-llama3-runtime' is not in the bundle"]


def test_admission_rules_on_objects(make_project: ProjectFactory) -> None:
    def break_isvc(isvc: dict[str, Any]) -> None:
        isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = "hpa"
        predictor = isvc["spec"]["predictor"]
        predictor["model"]["env"] = [{"name": "TENSOR_PARALLEL_SIZE", "value": "2"}]
        predictor["workerSpec"]["containers"].append({"name": "sidecar"})

    assert findings(make_project, "inferenceservice.yaml", break_isvc) == [
        "rendered/test/huggingface-llama3/serving/inferenceservice.yaml: /metadata/annotations: multi-node needs "
        "serving.kserve.io/autoscalerClass: none",
        "rendered/test/huggingface-llama3/serving/inferenceservice.yaml: /spec/predictor/workerSpec/containers: "
        "workerSpec allows one container",
        "rendered/test/huggingface-llama3/serving/inferenceservice.yaml: /spec/predictor/model/env: "
        "TENSOR_PARALLEL_SIZE / PIPELINE_PARALLEL_SIZE are refused by KServe 0.15+; use "
        "workerSpec.tensorParallelSize / pipelineParallelSize"]


def test_hf_token_anywhere_in_the_output_is_refused(make_project: ProjectFactory) -> None:
    bundle = build(make_project(""), "test")
    token = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
    files = [dataclasses.replace(f, text=f.text + f"# {token}\n") if f.path.endswith("README.md") else f
             for f in bundle.files]
    with pytest.raises(CheckError) as caught:
        check("rendered/test", bundle.plans, files)
    assert token not in str(caught.value)
    assert "looks like a Hugging Face token" in str(caught.value)
