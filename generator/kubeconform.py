"""Run the real kubeconform over a bundle (part of the check stage).

All objects of one schema set go to one kubeconform run, in strict mode (unknown fields
are errors); a kind without a schema is an error, never a skip. Findings name the
file the object will be written to and the field.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from generator.errors import Finding, ToolError
from generator.schemas import SchemaSet

KUBECONFORM_VERSION = "v0.7.0"
KUBECONFORM_MODULE = "github.com/yannh/kubeconform/cmd/kubeconform"
_CAUSE = re.compile(r"\s+- (?=at ')")           # kubeconform joins the validator's lines with spaces
_AT = re.compile(r"at '([^']*)': (.*)", re.DOTALL)


def find(*roots: Path, cache: Path | None = None, progress: Callable[[str], None] = print) -> Path:
    """kubeconform KUBECONFORM_VERSION: LLMPACK_KUBECONFORM, a project's .tools/bin, PATH, the cache;
    else (with a cache: the first render on a new machine) built into the cache with `go install`,
    saying so through `progress`."""
    for candidate in _candidates(roots, cache):
        sys.audit("llmpack.probe", str(candidate))      # for the no-op render's stamp (stamp.py)
        if candidate and candidate.is_file() and os.access(candidate, os.X_OK):
            sys.audit("llmpack.input", str(candidate))
            return candidate
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        sys.audit("llmpack.probe", os.path.join(folder or ".", "kubeconform"))
    on_path = shutil.which("kubeconform")
    if on_path and _version(Path(on_path)) == KUBECONFORM_VERSION:
        sys.audit("llmpack.input", on_path)
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


Verdict = tuple[tuple[str, str], ...]     # (field path, message) of each problem of one object; () valid
ARGS = ("-strict", "-output", "json", "-verbose", "-n", "1")
PIPE_BYTES = 1 << 20
PENDING_BYTES = 4 << 20   # what send keeps while kubeconform catches up
WORKERS = min(2, os.cpu_count() or 1)
SPREAD_AFTER = 64         # objects of one schema set before a second run shares them (a fleet)


def validate(binary: Path, schemas: SchemaSet, files: Sequence[tuple[str, str]]) -> list[Finding]:
    """Validate (display path, YAML text) pairs; returns one finding per problem."""
    found = verdicts(binary, schemas, [text for _, text in files])
    return [Finding(display, path, message) for (display, _), verdict in zip(files, found, strict=True)
            for path, message in verdict]


def verdicts(binary: Path, schemas: SchemaSet, texts: Sequence[str]) -> list[Verdict]:
    """The verdict on each object (one YAML document per text), from one kubeconform run."""
    run = Run(binary, schemas)
    try:
        for text in texts:
            run.send(text)
        return run.results()
    finally:
        run.stop()


class Runs:
    """kubeconform over the objects of one schema set: one run, and from SPREAD_AFTER objects on (a
    fleet) another run beside it on the next core, each object going to the run with the fewest bytes
    so far. (One run with `-n 2` would report its results in the order they finish, not as sent.)"""

    def __init__(self, binary: Path, schemas: SchemaSet) -> None:
        self.binary, self.schemas = binary, schemas
        self.runs: list[Run] = []
        self.bytes: list[int] = []

    def send(self, text: str) -> tuple[int, int]:
        """Queue one object; returns which run has it and its index among that run's results."""
        if not self.runs or (len(self.runs) < WORKERS and sum(run.sent for run in self.runs) >= SPREAD_AFTER):
            self.runs.append(Run(self.binary, self.schemas))
            self.bytes.append(0)
        which = min(range(len(self.runs)), key=self.bytes.__getitem__)
        self.bytes[which] += len(text)
        return which, self.runs[which].send(text)

    def results(self) -> list[list[Verdict]]:
        """Each run's results, in the order it was sent its objects."""
        return [run.results() for run in self.runs]

    def stop(self) -> None:
        for run in self.runs:
            run.stop()


class Run:
    """One kubeconform process reading objects on stdin as they come: `send` does not wait for the
    pipe (what it cannot take yet is kept and written at the next `send`, up to PENDING_BYTES: then
    `send` waits, so memory stays bounded when kubeconform is the slower one), so kubeconform
    validates on one core while the render goes on on the other. One worker keeps its results in
    input order and compiles each schema once (more workers compile every schema again, for more
    CPU and memory)."""

    def __init__(self, binary: Path, schemas: SchemaSet) -> None:
        command = [str(binary), *ARGS, "-kubernetes-version", schemas.kubernetes_version,
                   *[arg for location in schemas.locations() for arg in ("-schema-location", location)], "-"]
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        # One core per run (the render and another run have the others): left to itself, Go's collector
        # marks on every core, which costs more CPU in all than it saves time.
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
                                        env={**os.environ, "GOMAXPROCS": "1"})
        assert self.process.stdin is not None
        self.fd = self.process.stdin.fileno()
        os.set_blocking(self.fd, False)
        with contextlib.suppress(OSError, AttributeError):    # Linux: room for a few hundred objects
            fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.pending, self.sent = bytearray(), 0

    def send(self, text: str) -> int:
        """Queue one object; returns its index among this run's results."""
        self.pending += (b"---\n" if self.sent else b"") + text.encode("utf-8")
        self.sent += 1
        self._write(keep=PENDING_BYTES)
        return self.sent - 1

    def _write(self, *, keep: int) -> None:
        """Write what the pipe takes; wait for it while more than `keep` bytes are left."""
        while self.pending:
            try:
                del self.pending[:os.write(self.fd, self.pending)]
            except BlockingIOError:
                if len(self.pending) <= keep:
                    return
                select.select([], [self.fd], [])
            except BrokenPipeError:      # kubeconform stopped: results() says why
                self.pending.clear()

    def results(self) -> list[Verdict]:
        """Every object sent, validated: wait for kubeconform and read its report."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self._write(keep=0)
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        output = self.process.stdout.read().decode("utf-8", "replace")
        code = self.process.wait()
        self.errors.seek(0)
        stderr = self.errors.read().decode("utf-8", "replace").strip()
        try:
            found = json.loads(output or "{}").get("resources") or []
        except json.JSONDecodeError:
            raise ToolError(f"kubeconform failed (exit {code}): {stderr or output[:500]}") from None
        if code not in (0, 1) or len(found) != self.sent:
            raise ToolError(f"kubeconform failed (exit {code}, {len(found)} results for {self.sent} objects): "
                            f"{stderr[-2000:]}")
        return [_verdict(resource) for resource in found]

    def stop(self) -> None:
        """End the process if it still runs (a render that failed does not wait for it)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self.errors.close()


def _verdict(resource: dict[str, object]) -> Verdict:
    """A result as findings without their file: each located problem once, in a stable order. The
    validator's "validation failed" lines only group the problems listed after them, and where they
    fall depends on how the schema is laid out (sharing.py), not on the object: they are left out."""
    status, message = resource.get("status"), str(resource.get("msg", ""))
    what = f"{resource.get('kind')} {resource.get('version')}"
    if status == "statusInvalid":
        causes = [_AT.match(part) for part in _CAUSE.split(message)[1:]]
        found = sorted({(at.group(1) or "/", at.group(2).strip()) for at in causes
                        if at is not None and at.group(2).strip() != "validation failed"})
        return tuple(found) or (("", message),)
    if status == "statusError":
        if message.startswith("could not find schema"):
            return (("", f"no schema for {what}: add its CustomResourceDefinition to the CRD folder (--crd-dir), "
                         "or check apiVersion and kind"),)
        return (("", f"{what}: {message}"),)
    return ()
