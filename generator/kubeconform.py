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
from collections.abc import Sequence
from pathlib import Path

from generator.errors import Finding, ToolError
from generator.schemas import SchemaSet

KUBECONFORM_VERSION = "v0.7.0"
_AT = re.compile(r"at '([^']*)': (.+)")


def find(*roots: Path) -> Path:
    """kubeconform from LLMPACK_KUBECONFORM, the .tools/bin of the project (or of llmpack), or PATH."""
    candidates = [os.environ.get("LLMPACK_KUBECONFORM"),
                  *[str(root / ".tools" / "bin" / f"kubeconform-{KUBECONFORM_VERSION}") for root in roots],
                  shutil.which("kubeconform")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    places = ", ".join(f"{root}/.tools/bin" for root in roots)
    raise ToolError(f"kubeconform not found (LLMPACK_KUBECONFORM, {places}, PATH): run "
                    f"`make tools`, which installs kubeconform {KUBECONFORM_VERSION} with go install, "
                    "or set LLMPACK_KUBECONFORM to its path")


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
