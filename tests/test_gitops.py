"""Delivery: Argo CD waves and Application, Flux's ordered Kustomizations, real `kustomize build`,
`llmpack check` (stale or hand-edited rendered/) and `llmpack diff` against a real git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.check import SchemaCheck
from generator.pipeline import Bundle, build
from generator.project import Extras, Project
from generator.write import write
from helpers import REPO, ProjectFactory, crd_dir, obj_at

ENVS = ["dev", "staging", "prod"]
BOTH = ("gitops.argocd.enabled=true", "gitops.argocd.repoURL=https://git.example/platform.git",
        "gitops.flux.enabled=true", "gitops.flux.url=https://git.example/platform.git")


def kustomize() -> str:
    path = os.environ.get("LLMPACK_KUSTOMIZE") or str(REPO / ".tools" / "bin" / "kustomize-v5.8.1")
    if not Path(path).is_file():
        pytest.fail("kustomize is missing: run the tests with `make test` (it runs `make tools`)")
    return path


def objects(bundle: Bundle, prefix: str = "") -> list[dict[str, Any]]:
    return [f.obj for f in bundle.files if f.obj is not None and f.path.startswith(prefix)
            and not f.path.startswith("gitops/")]


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@pytest.mark.parametrize("target", ["kserve", "raw"])
@pytest.mark.parametrize("env", ENVS)
def test_kustomize_build_gives_exactly_the_objects_llmpack_wrote(env: str, target: str, tmp_path: Path) -> None:
    bundle = build(Project.at(REPO), env, Extras(sets=(f"target={target}", *BOTH)))
    write(tmp_path, env, bundle.texts())
    built = subprocess.run([kustomize(), "build", str(tmp_path / env)], capture_output=True, text=True, check=True)
    produced = sorted(yaml.safe_load_all(built.stdout), key=key)
    assert produced == sorted(objects(bundle), key=key)
    for folder in sorted({f.path.rpartition("/")[0] for f in bundle.files
                          if f.path.endswith("/kustomization.yaml")}):
        phase = subprocess.run([kustomize(), "build", str(tmp_path / env / folder)], capture_output=True,
                               text=True, check=True)
        assert sorted(yaml.safe_load_all(phase.stdout), key=key) == sorted(objects(bundle, folder + "/"), key=key)


@pytest.mark.parametrize("target", ["kserve", "raw"])
def test_argo_cd_waves_apply_storage_then_download_then_serving(target: str) -> None:
    bundle = build(Project.at(REPO), "prod", Extras(sets=(f"target={target}",)))
    wave = "argocd.argoproj.io/sync-wave"
    waves = {(f.path.split("/")[1], f.obj["kind"]): int(f.obj["metadata"]["annotations"][wave])
             for f in bundle.files if f.obj is not None and not f.path.startswith("gitops/")
             and "/verify/" not in f.path}
    storage = {w for (phase, _), w in waves.items() if phase == "storage"}
    download = {w for (phase, _), w in waves.items() if phase == "download"}
    serving = {w for (phase, _), w in waves.items() if phase == "serving"}
    assert max(storage) < min(download) < min(serving)
    if target == "kserve":
        assert waves[("serving", "ServingRuntime")] < waves[("serving", "InferenceService")]
    else:
        assert waves[("serving", "Service")] < waves[("serving", "Deployment")]


def test_no_waves_without_argo_cd() -> None:
    bundle = build(Project.at(REPO), "staging")
    assert all("argocd.argoproj.io/sync-wave" not in (f.obj["metadata"].get("annotations") or {})
               for f in bundle.files if f.obj is not None)


def test_argo_cd_application_syncs_the_environment_folder() -> None:
    bundle = build(Project.at(REPO), "prod")
    app = obj_at(bundle, "gitops/argocd/application.yaml")
    assert app["spec"]["source"] == {"repoURL": "https://github.com/example-org/llm-platform.git",
                                     "targetRevision": "main", "path": "rendered/prod"}
    assert app["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "llm-serving"}
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    patch = obj_at(bundle, "gitops/argocd/argocd-cm-health.yaml")
    lua = (REPO / "charts/kserve-multinode/files/argocd-health-inferenceservice.lua").read_text()
    assert patch["data"]["resource.customizations.health.serving.kserve.io_InferenceService"] == lua
    assert "argocd" not in (next(f.text for f in bundle.files if f.path == "kustomization.yaml"))


def test_flux_kustomizations_chain_storage_download_serving() -> None:
    bundle = build(Project.at(REPO), "staging")
    flux = {f.obj["metadata"]["name"]: f.obj["spec"] for f in bundle.files
            if f.obj is not None and f.obj["kind"] == "Kustomization"}
    name = "llmpack-staging-llama3-8b-staging"
    assert flux[f"{name}-storage"]["wait"] is False and "dependsOn" not in flux[f"{name}-storage"]
    assert flux[f"{name}-download"]["dependsOn"] == [{"name": f"{name}-storage"}]
    assert flux[f"{name}-download"]["wait"] is True and flux[f"{name}-download"]["timeout"] == "6h"
    assert flux[f"{name}-serving"]["dependsOn"] == [{"name": f"{name}-download"}]
    paths = {f.path.rpartition("/")[0] for f in bundle.files if f.path.endswith("/kustomization.yaml")}
    assert {spec["path"].removeprefix("./rendered/staging/") for spec in flux.values()} == paths
    assert all(spec["sourceRef"] == {"kind": "GitRepository", "name": "llmpack-staging"} for spec in flux.values())


@pytest.mark.parametrize("target", ["kserve", "raw"])
def test_gitops_objects_validate_against_the_real_crds(target: str, schema_check: SchemaCheck) -> None:
    bundle = build(Project.at(REPO), "prod", Extras(sets=(f"target={target}", *BOTH)), schema_check)
    kinds = {f.obj["kind"] for f in bundle.files if f.path.startswith("gitops/") and f.obj}
    assert kinds == {"Application", "ConfigMap", "GitRepository", "Kustomization"}


def test_gitops_settings_must_agree_across_releases(tmp_path: Path) -> None:
    from generator.errors import ValuesError
    from helpers import REPO as repo

    folder = tmp_path / "overlays" / "test" / "releases"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text("name: one\nmodel: {storageUri: pvc://one/m}\n")
    (folder / "b.yaml").write_text("name: two\nmodel: {storageUri: pvc://two/m}\ngitops: {renderedPath: x}\n")
    project = Project(tmp_path, repo / "charts/kserve-multinode", repo / "schemas/values.schema.json")
    with pytest.raises(ValuesError) as caught:
        build(project, "test")
    assert str(caught.value.problems[0]) == (
        "overlays/test/releases/b.yaml:3 at /gitops: release b has other gitops settings than release a; gitops "
        "belongs to the environment: set it in the environment's values.yaml")


# -- llmpack check and llmpack diff, on a copy of the project ------------------------------------------


def llmpack(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "LLMPACK_CRD_DIR": str(crd_dir()),
           "LLMPACK_KUBECONFORM": str(REPO / ".tools/bin/kubeconform-v0.7.0"),
           "LLMPACK_CACHE_DIR": str(project / ".cache"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(project)}
    return subprocess.run([sys.executable, "-m", "generator", "-C", str(project), *args], capture_output=True,
                          text=True, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository holding a copy of the project with rendered/ committed."""
    for folder in ("charts", "schemas", "overlays"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    assert llmpack(tmp_path, "render", "--env", "prod", "-q", "--no-crd-check").returncode == 0
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_check_passes_then_catches_a_stale_file_and_a_hand_edit(repo: Path) -> None:
    done = llmpack(repo, "check", "--env", "prod", "--no-crd-check")
    assert done.returncode == 0
    assert done.stdout == "rendered/ is up to date (schemas not checked: --no-crd-check) (1 environment(s))\n"
    edit(repo / "overlays/prod/releases/llama3-8b.yaml", "size: 50Gi", "size: 60Gi")
    edit(repo / "rendered/prod/llama3-70b/serving/servingruntime.yaml", 'cpu: "32"', 'cpu: "16"')
    done = llmpack(repo, "check", "--env", "prod", "--no-crd-check")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith("rendered/ is out of date (") and lines[0].endswith("run `llmpack render` and commit:")
    assert "  hand-edited  rendered/prod/llama3-70b/serving/servingruntime.yaml" in lines
    assert "  stale        rendered/prod/llama3-8b/storage/persistentvolumeclaim.yaml" in lines


def test_diff_without_changes_is_empty(repo: Path) -> None:
    done = llmpack(repo, "diff", "--env", "prod", "--base", "main")
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_diff_of_a_parallelism_change(repo: Path) -> None:
    edit(repo / "overlays/prod/releases/llama3-8b.yaml", '- name: TENSOR_PARALLEL_SIZE\n      value: "1"',
         '- name: TENSOR_PARALLEL_SIZE\n      value: "2"')
    done = llmpack(repo, "diff", "--env", "prod", "--base", "main")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("### llmpack: `rendered/prod` against `main`\n")
    assert ("- :warning: **llama3-8b: parallelism TP 1 x PP 2 → TP 2 x PP 2**: every pod is recreated and the "
            "model reloads; KServe advises against changing TP/PP in production") in out
    assert "- :warning: **llama3-8b: GPUs 2 → 4**: check that the cluster has them free" in out
    assert "- `/spec/predictor/workerSpec/tensorParallelSize`: `1` → `2`" in out
    assert '- `/spec/predictor/model/resources/limits/nvidia.com/gpu`: `"1"` → `"2"`' in out
    assert "| changed | InferenceService `llm-serving/huggingface-llama3` |" in out
    assert "<details><summary>Unified diff (" in out and "```diff" in out and "+      tensorParallelSize: 2" in out


def test_diff_of_a_revision_change(repo: Path) -> None:
    edit(repo / "overlays/prod/releases/llama3-70b.yaml", "7129260dd854a80eb10ace5f61c20324b472b31c",
         "0cac6d727e4cdf117e1bde11e4c7badd8b963919")
    out = llmpack(repo, "diff", "--env", "prod", "--base", "main").stdout
    assert ("- :warning: **llama3-70b: model revision meta-llama/Meta-Llama-3-70B-Instruct@7129260dd854a80eb10ace5"
            "f61c20324b472b31c → meta-llama/Meta-Llama-3-70B-Instruct@0cac6d727e4cdf117e1bde11e4c7badd8b963919**: "
            "a new download Job runs before serving") in out
    assert out.count("| added | Job `llm-serving/llama3-70b-instruct-download-") == 1
    assert out.count("| removed | Job `llm-serving/llama3-70b-instruct-download-") == 1


def test_diff_of_a_pvc_shrink_and_a_storage_class_change(repo: Path) -> None:
    edit(repo / "overlays/prod/releases/llama3-70b.yaml", "size: 300Gi", "size: 200Gi")
    edit(repo / "overlays/prod/releases/llama3-8b.yaml", "storageClassName: nfs-client", "storageClassName: fast")
    out = llmpack(repo, "diff", "--env", "prod", "--base", "main").stdout
    assert ("- :warning: **PVC llama-3-70b-pvc: size 300Gi → 200Gi**: Kubernetes refuses to shrink a claim; the sync "
            "will fail") in out
    assert ("- :warning: **PVC llama-3-8b-pvc: storage class nfs-client → fast**: storageClassName is immutable; "
            "the sync will fail unless the claim is re-created") in out


def test_diff_of_an_unknown_ref_is_a_usage_error(repo: Path) -> None:
    done = llmpack(repo, "diff", "--env", "prod", "--base", "no-such-branch")
    assert done.returncode == 2 and "--base 'no-such-branch' is not a commit" in done.stderr
    assert "Traceback" not in done.stderr


# -- the smoke test phase (verify/), after serving -----------------------------------------------------


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_every_release_carries_a_smoke_test_after_serving(env: str) -> None:
    bundle = build(Project.at(REPO), env)
    for planned in bundle.plans:
        assert planned.verify is not None
        job = obj_at(bundle, f"{planned.release}/verify/smoke-job.yaml")
        env_vars = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        service = f"http://{planned.name}-predictor.{planned.namespace}.svc.cluster.local"
        assert env_vars["LLMPACK_SMOKE_URL"] == service
        assert env_vars["LLMPACK_SMOKE_STATUS_URL"] == f"{service}:8081/llmpack/v1/cluster"
        assert env_vars["LLMPACK_SMOKE_MODEL"] == planned.name
        assert (env_vars["LLMPACK_SMOKE_EXPECTED_NODES"], env_vars["LLMPACK_SMOKE_EXPECTED_GPUS"]) == (
            str(planned.pipeline_parallel), str(planned.total_gpus))
        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] >= 1800 + 6 * 60 + 30
        assert all("secretKeyRef" not in (e.get("valueFrom") or {})
                   for e in job["spec"]["template"]["spec"]["containers"][0]["env"])


def test_argo_cd_runs_the_smoke_test_as_a_post_sync_hook_that_fails_the_sync() -> None:
    bundle = build(Project.at(REPO), "prod")
    for planned in bundle.plans:
        annotations = obj_at(bundle, f"{planned.release}/verify/smoke-job.yaml")["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/hook"] == "PostSync"
        assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        assert "argocd.argoproj.io/sync-wave" not in annotations
    assert "llama3-8b/verify" in yaml.safe_load(bundle.texts()["kustomization.yaml"])["resources"]


def test_flux_runs_the_smoke_test_after_serving_and_waits_for_it() -> None:
    bundle = build(Project.at(REPO), "staging")
    (planned,) = bundle.plans
    verify = obj_at(bundle, f"gitops/flux/{planned.release}-verify.yaml")["spec"]
    assert verify["dependsOn"] == [{"name": f"llmpack-staging-{planned.release}-serving"}]
    assert verify["wait"] is True and verify["timeout"] == "1h"
    assert verify["path"] == f"./rendered/staging/{planned.release}/verify"


def test_the_smoke_test_can_be_left_out(make_project: ProjectFactory) -> None:
    bundle = build(make_project("verify: {enabled: false}\n"), "test")
    assert bundle.plans[0].verify is None and not any("/verify/" in f.path for f in bundle.files)


def test_the_head_exposes_its_ray_status_to_the_smoke_test() -> None:
    """KServe turns every port of kserve-container into a port of the predictor Service; target raw does
    the same in its own Service."""
    kserve = build(Project.at(REPO), "dev")
    runtime = obj_at(kserve, "llama3-8b-dev/serving/servingruntime.yaml")["spec"]["containers"][0]
    assert runtime["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                {"name": "llmpack-status", "containerPort": 8081, "protocol": "TCP"}]
    raw = build(Project.at(REPO), "dev", Extras(sets=("target=raw",)))
    ports = obj_at(raw, "llama3-8b-dev/serving/service.yaml")["spec"]["ports"]
    assert [p["port"] for p in ports] == [80, 8081]
