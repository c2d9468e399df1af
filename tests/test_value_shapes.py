"""Types are exact at the schema and every string that reaches a manifest has a shape: whole floats are
not integers, integers meet the bound Kubernetes gives them, quantities are positive where Kubernetes
needs it, and GitOps fields refuse line breaks, template syntax and '..' at the values file's line
(issue #13's reproducers: `startup.rayWaitSeconds=600.0` reached head.sh, a bad Flux url was
reported against the rendered file)."""

from __future__ import annotations

import pytest

from generator.errors import LoadError, ValuesError
from generator.pipeline import build
from helpers import ProjectFactory

V = "overlays/test/values.yaml"
INT32, INT64 = 2**31 - 1, 2**63 - 1
FLUX = 'gitops: {flux: {enabled: true, url: "https://git.example/x.git"}}\n'
ARGO = 'gitops: {argocd: {enabled: true, repoURL: "https://git.example/x.git"}}\n'

# (id, values, JSON path, message fragment)
WHOLE_FLOATS = [(f"float-{key}", "{}: {{{}: {}}}\n".format(*key.split("."), value), "/" + key.replace(".", "/"),
                 f"expected an integer, got number {value}; write {int(value)}, not {value}")
                for key, value in (("startup.rayWaitSeconds", 600.0), ("startup.timeoutSeconds", 3600.0),
                                   ("vllm.maxNumSeqs", 16.0), ("vllm.maxModelLen", 8192.0),
                                   ("download.backoffLimit", 3.0), ("download.activeDeadlineSeconds", 600.0),
                                   ("workerSpec.size", 1.0), ("predictor.minReplicas", 1.0),
                                   ("verify.waitSeconds", 60.0), ("gpu.perNode", 8.0))]
BOUNDS = [
    ("backoff-beyond-int32", f"download: {{backoffLimit: {INT32 + 1}}}\n", "/download/backoffLimit",
     f"must be at most {INT32}"),
    ("deadline-beyond-int64", f"download: {{activeDeadlineSeconds: {INT64 + 1}}}\n", "/download/activeDeadlineSeconds",
     "too large an integer"),
    ("toleration-beyond-int64", "scheduling: {tolerations: [{key: gpu, operator: Exists, effect: NoExecute, "
     f"tolerationSeconds: {INT64 + 1}}}]}}\n", "/scheduling/tolerations/0/tolerationSeconds", "too large an integer"),
    ("toleration-int64-is-fine", "scheduling: {tolerations: [{key: gpu, operator: Exists, effect: NoExecute, "
     f"tolerationSeconds: {INT64}}}]}}\n", "", ""),
    ("max-model-len-beyond-int32", f"vllm: {{maxModelLen: {INT32 + 1}}}\n", "/vllm/maxModelLen", f"at most {INT32}"),
    ("replicas-negative", "predictor: {minReplicas: -1}\n", "/predictor/minReplicas", "must be at least 0"),
    ("pvc-size-zero", 'pvc: {size: "0"}\n', "/pvc/size", "must be a Kubernetes quantity above zero"),
    ("pvc-size-zero-gi", "pvc: {size: 0Gi}\n", "/pvc/size", "must be a Kubernetes quantity above zero"),
    ("shm-zero", "shm: {sizeLimit: 0Mi}\n", "/shm/sizeLimit", "must be a Kubernetes quantity above zero"),
    ("pvc-size-19-digits", 'pvc: {size: "1234567890123456789"}\n', "/pvc/size", "above zero"),
    ("pvc-1ki-for-16gb", "pvc: {size: 1Ki}\n", "/pvc/size", "a claim of 1Ki cannot hold"),
]
INJECTIONS = [
    (f"{where}-{kind}", body.replace("@", payload), path, message)
    for where, body, path, message in (
        ("flux-url", 'gitops: {flux: {enabled: true, url: "@"}}\n', "/gitops/flux/url", "must be the URL of the git"),
        ("flux-branch", FLUX.replace("}}\n", ', branch: "@"}}\n'), "/gitops/flux/branch", "must be a git branch"),
        ("argo-repo", 'gitops: {argocd: {enabled: true, repoURL: "@"}}\n', "/gitops/argocd/repoURL", "must be the URL"),
        ("argo-revision", ARGO.replace("}}\n", ', targetRevision: "@"}}\n'), "/gitops/argocd/targetRevision",
         "must be a git branch, tag or commit"),
        ("argo-project", ARGO.replace("}}\n", ', project: "@"}}\n'), "/gitops/argocd/project",
         "must be an Argo CD project name"),
        ("argo-server", ARGO.replace("}}\n", ', destinationServer: "@"}}\n'), "/gitops/argocd/destinationServer",
         "must be the https:// URL"),
        ("rendered-path", 'gitops: {renderedPath: "@"}\n', "/gitops/renderedPath", "must be the path of rendered/"))
    for kind, payload in (("newline", "main\\nspec: evil"), ("template", "{{ 7*7 }}"), ("dotdot", "../../etc"))
    if not (where in ("flux-url", "argo-repo", "argo-server") and kind == "dotdot")
]
PATHS = [
    ("url-with-dotdot-path-is-a-url", 'gitops: {flux: {enabled: true, url: "https://git.example/../x.git"}}\n', "", ""),
    ("namespace-upper", "namespace: LLM\n", "/namespace", "must be a namespace name"),
    ("label-value-newline", 'labels: {team: "a\\nb"}\n', "/labels/team", "must be a label value"),
    ("node-selector-value", 'scheduling: {nodeSelector: {gpu: "a b"}}\n', "/scheduling/nodeSelector/gpu",
     "must be a label value"),
    ("runtime-name", "runtime: {create: false, name: Bad_Name}\n", "/runtime/name", "must be the name of a"),
    ("image-with-space", 'runtime: {image: "registry.example/a b:1"}\n', "/runtime/image",
     "must be an image reference"),
    ("image-latest", 'runtime: {image: "registry.example/a:latest"}\n', "/runtime/image", "must be a pinned image"),
    ("verify-image-unpinned", 'verify: {image: "python"}\n', "/verify/image", "must be a pinned image"),
    ("arg-newline", 'model: {args: ["--a\\n--b"]}\n', "/model/args/0", "must be one argument on one line"),
    ("ignore-pattern-newline", 'download: {ignorePatterns: ["a\\nb"]}\n', "/download/ignorePatterns/0",
     "must be one glob pattern"),
    ("storage-uri-space", 'model: {storageUri: "pvc://c/a b"}\n', "/model/storageUri", "must be a URI on one line"),
    ("sync-option", ARGO.replace("}}\n", ', syncOptions: ["Prune=true\\nx"]}}\n'), "/gitops/argocd/syncOptions/0",
     "must be an Argo CD sync option"),
]
CASES = WHOLE_FLOATS + BOUNDS + INJECTIONS + PATHS


@pytest.mark.parametrize(("values", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_at_the_values_line(make_project: ProjectFactory, values: str, path: str, message: str) -> None:
    project = make_project(values)
    if not path:
        build(project, "test")
        return
    with pytest.raises((ValuesError, LoadError)) as caught:
        build(project, "test")
    if isinstance(caught.value, LoadError):     # beyond what Kubernetes reads: refused by the loader, at its line
        assert caught.value.location.source == V and message in caught.value.message, str(caught.value)
        return
    assert isinstance(caught.value, ValuesError)
    found = [p for p in caught.value.problems if str(p).split(" at ", 1)[-1].startswith(path + ":")]
    assert found, str(caught.value)
    assert found[0].location is not None and found[0].location.source == V, str(caught.value)
    assert message in str(found[0]), str(found[0])


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 50
