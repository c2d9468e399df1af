"""Pods run without privilege and pass Pod Security "baseline"; the real kube-linter finds nothing
in any bundle but the exceptions recorded on the objects, each naming a real check with a reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from generator import emit
from generator.check import check
from generator.errors import CheckError
from generator.pipeline import Bundle, build
from generator.project import Extras, Project
from generator.render import RenderedFile
from generator.write import write
from helpers import REPO

IGNORE = "ignore-check.kube-linter.io/"
BOTH = ("gitops.argocd.enabled=true", "gitops.argocd.repoURL=https://git.example/p.git",
        "gitops.flux.enabled=true", "gitops.flux.url=https://git.example/p.git")
VARIANTS = [(env, target, flavor) for env in ("dev", "staging", "prod") for target in ("kserve", "raw")
            for flavor in ("llmpack", "kserve")]


def kube_linter() -> str:
    path = os.environ.get("LLMPACK_KUBE_LINTER") or str(REPO / ".tools/bin/kube-linter-v0.8.3")
    if not Path(path).is_file():
        pytest.fail("kube-linter is missing: run the tests with `make test` (it runs `make tools`)")
    return path


def bundle(env: str, target: str, flavor: str) -> Bundle:
    image = ("runtime.image=registry.example/vllm-runtime@sha256:" + "0" * 64,) if flavor == "llmpack" else ()
    return build(Project.at(REPO), env, Extras(sets=(f"target={target}", f"runtime.flavor={flavor}", *image, *BOTH)))


@pytest.mark.parametrize(("env", "target", "flavor"), VARIANTS)
def test_kube_linter_finds_nothing_but_recorded_exceptions(env: str, target: str, flavor: str,
                                                           tmp_path: Path) -> None:
    write(tmp_path, env, bundle(env, target, flavor).texts())
    done = subprocess.run([kube_linter(), "lint", "--format", "json", str(tmp_path / env)], capture_output=True,
                          text=True)
    report = json.loads(done.stdout)
    assert report["Reports"] in (None, []), [r["Diagnostic"]["Message"] for r in report["Reports"] or []]
    assert done.returncode == 0


def test_every_exception_names_a_real_check_and_gives_a_reason() -> None:
    listed = subprocess.run([kube_linter(), "checks", "list", "--format", "json"], capture_output=True, text=True,
                            check=True)
    checks = {c["name"] for c in json.loads(listed.stdout)}
    seen = set()
    for env, target, flavor in VARIANTS:
        for f in bundle(env, target, flavor).files:
            for key, reason in ((f.obj or {}).get("metadata", {}).get("annotations") or {}).items():
                if key.startswith(IGNORE):
                    name = key.removeprefix(IGNORE)
                    assert name in checks, f"{f.path}: {name} is not a kube-linter check"
                    assert len(reason.split()) >= 5, f"{f.path}: the exception for {name} needs a reason"
                    seen.add(name)
    assert seen == {"job-ttl-seconds-after-finished", "no-read-only-root-fs"}


def test_the_promises_hold_on_every_pod() -> None:
    for env, target, _ in VARIANTS:
        for f in bundle(env, target, "llmpack").files:
            obj = f.obj or {}
            spec = (obj.get("spec") or {})
            pods = [spec["template"]["spec"]] if obj.get("kind") in ("Job", "Deployment") else []
            for pod in pods:
                assert pod["automountServiceAccountToken"] is False
                assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
                assert pod["securityContext"]["runAsNonRoot"] is True
                for container in pod["containers"]:
                    security = container["securityContext"]
                    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {
                        "drop": ["ALL"]}
                    assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
                    assert set(container["resources"]["limits"]) >= {"cpu", "memory"}


def edited(files: tuple[RenderedFile, ...], suffix: str, change: Any) -> list[RenderedFile]:
    out = []
    for f in files:
        obj = f.obj
        if f.path.endswith(suffix) and obj is not None:
            change(obj)
            f = RenderedFile.of(f.path, emit.dump(obj), obj)
        out.append(f)
    return out


@pytest.mark.parametrize(("suffix", "change", "finding"), [
    ("serving/servingruntime.yaml",
     lambda o: o["spec"]["containers"][0]["securityContext"].update(privileged=True),
     "/spec/predictor/containers/0/securityContext/privileged: kserve-container: privileged containers are not "
     "allowed (Pod Security baseline)"),
    ("serving/inferenceservice.yaml",
     lambda o: o["spec"]["predictor"]["workerSpec"].update(hostNetwork=True),
     "/spec/predictor/workerSpec/hostNetwork: host namespaces are not allowed (Pod Security baseline)"),
    ("download/download-job.yaml",
     lambda o: o["spec"]["template"]["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
     "/spec/template/spec/volumes/2: hostPath volumes are not allowed (Pod Security baseline)"),
    ("serving/servingruntime.yaml",
     lambda o: o["spec"]["workerSpec"]["containers"][0]["securityContext"]["capabilities"].update(
         add=["SYS_ADMIN"]),
     "/spec/predictor/workerSpec/containers/0/securityContext/capabilities/add: worker-container: capabilities "
     "['SYS_ADMIN'] are not allowed (baseline)"),
])
def test_pod_security_violations_are_found(suffix: str, change: Any, finding: str) -> None:
    built = build(Project.at(REPO), "dev")
    with pytest.raises(CheckError) as caught:
        check("rendered/dev", built.plans, edited(built.files, suffix, change))
    messages = [f"{f.path}: {f.message}" for f in caught.value.findings]
    assert finding in messages, messages
