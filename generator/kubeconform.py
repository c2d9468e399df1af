"""Run the real kubeconform over a bundle (part of the check stage).

All objects of one schema set go to one kubeconform run, in strict mode (unknown fields
are errors); a kind without a schema is an error, never a skip. Findings name the
file the object will be written to and the field.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from generator.errors import Finding, ToolError
from generator.schemas import SchemaSet

KUBECONFORM_VERSION = "v0.7.0"
KUBECONFORM_MODULE = "github.com/yannh/kubeconform/cmd/kubeconform"
_AT = re.compile(r"at '([^']*)': (.+)")


def find(*roots: Path, cache: Path | None = None, progress: Callable[[str], None] = print) -> Path:
    """kubeconform KUBECONFORM_VERSION: LLMPACK_KUBECONFORM, a project's .tools/bin, PATH, the cache;
    else (with a cache: the first render on a new machine) built into the cache with `go install`,
    saying so through `progress`."""
    for candidate in _candidates(roots, cache):
        if candidate and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("kubeconform")
    if on_path and _version(Path(on_path)) == KUBECONFORM_VERSION:
        return Path(on_path)
    if cache is not None and shutil.which("go"):
        return _build(cache / "tools", progress)
    raise ToolError(f"kubeconform {KUBECONFORM_VERSION} not found (LLMPACK_KUBECONFORM, .tools/bin, PATH): install "
                    "Go (https://go.dev/dl/) and llmpack builds it on first use, or run `make tools` in a checkout, "
                    "or set LLMPACK_KUBECONFORM to its path")


def _candidates(roots: Sequence[Path], cache: Path | None) -> list[Path]:
    explicit = os.environ.get("LLMPACK_KUBECONFORM")
    name = f"kubeconform-{KUBECONFORM_VERSION}"
    found = [Path(explicit)] if explicit else []
    found += [root / ".tools" / "bin" / name for root in roots]
    return found + ([cache / "tools" / name] if cache is not None else [])


def _version(binary: Path) -> str:
    try:
        done = subprocess.run([str(binary), "-v"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def _build(folder: Path, progress: Callable[[str], None]) -> Path:
    """`go install` the pinned kubeconform into `folder`, atomically."""
    target = folder / f"kubeconform-{KUBECONFORM_VERSION}"
    progress(f"building kubeconform {KUBECONFORM_VERSION} with `go install` (once; about a minute) ...")
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kubeconform-", dir=folder) as gobin:
        done = subprocess.run(["go", "install", f"{KUBECONFORM_MODULE}@{KUBECONFORM_VERSION}"],
                              env={**os.environ, "GOBIN": gobin}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ToolError(f"`go install {KUBECONFORM_MODULE}@{KUBECONFORM_VERSION}` failed: "
                            f"{done.stderr.strip()[-2000:]}")
        os.replace(Path(gobin) / "kubeconform", target)
    progress(f"built kubeconform {KUBECONFORM_VERSION} in {time.monotonic() - started:.0f} s: {target}")
    return target


def validate(binary: Path, schemas: SchemaSet, files: Sequence[tuple[str, str]]) -> list[Finding]:
    """Validate (display path, YAML text) pairs; returns one finding per problem."""
    if not files:
        return []
    with tempfile.TemporaryDirectory(prefix="llmpack-kubeconform-") as tmp:
        shown: dict[str, str] = {}
        for index, (display, text) in enumerate(files):
            path = Path(tmp) / f"{index:04d}.yaml"
            path.write_text(text, encoding="utf-8")
            shown[str(path)] = display
        # one worker compiles each schema once; more workers each compile the (large) KServe schemas again
        workers = "1" if len(files) < 200 else "2"
        command = [str(binary), "-strict", "-output", "json", "-n", workers,
                   "-kubernetes-version", schemas.kubernetes_version,
                   *[arg for location in schemas.locations() for arg in ("-schema-location", location)],
                   *shown]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise ToolError(f"kubeconform failed (exit {done.returncode}): {done.stderr.strip() or done.stdout[:500]}"
                        ) from None
    if done.returncode not in (0, 1):
        raise ToolError(f"kubeconform failed (exit {done.returncode}): {done.stderr.strip()}")
    findings = []
    for resource in report.get("resources") or []:
        findings += _findings(resource, shown.get(resource.get("filename", ""), resource.get("filename", "?")))
    return findings


def _findings(resource: dict[str, object], display: str) -> list[Finding]:
    status, message = resource.get("status"), str(resource.get("msg", ""))
    what = f"{resource.get('kind')} {resource.get('version')}"
    if status == "statusInvalid":
        found = [Finding(display, path or "/", text.strip()) for path, text in _AT.findall(message)]
        return found or [Finding(display, "", message)]
    if status == "statusError":
        if message.startswith("could not find schema"):
            return [Finding(display, "", f"no schema for {what}: add its CustomResourceDefinition to the CRD "
                                         "folder (--crd-dir), or check apiVersion and kind")]
        return [Finding(display, "", f"{what}: {message}")]
    return []
