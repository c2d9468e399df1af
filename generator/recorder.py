"""What a process reads, seen while a `Recorder` is entered (for the no-op render's stamp: stamp.py).

A Python audit hook sees every file opened for reading, every folder listed and every program
started; `sys.audit("llmpack.input", path)` names a file read without being opened (a digest
remembered by its stat: digests.py) and `sys.audit("llmpack.probe", path)` a path only looked at
(where kubeconform could be). An audit hook cannot be removed: it is added once per process and
does nothing while no recorder is entered. Standard library only.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from generator.digests import State, state

TYPE_CHECKING = False   # typing's, without importing typing on the start-up path (mypy reads it as True)
if TYPE_CHECKING:
    from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_ACTIVE: list[Recorder] = []    # the recorders the (process-wide, permanent) audit hook feeds
_HOOKED: list[bool] = []
_UNSEEN: list[bool] = []


class Recorder:
    """What a render reads, seen through an audit hook while the recorder is entered."""

    def __init__(self, start: Path, invocation: Mapping[str, Any]) -> None:
        self.start, self.invocation = start, invocation
        self.start_ns = time.time_ns()
        self.seen: dict[str, State | None] = {}       # file or folder read -> its stat when first read
        self.folders: set[str] = set()
        self.probes: set[str] = set()
        self.trees: list[Path] = []

    def look(self, *, probes: Iterable[Path] = (), trees: Iterable[Path] = ()) -> None:
        """Also record the kind of `probes` (only looked at) and every folder below `trees`."""
        self.probes |= {os.path.abspath(p) for p in probes}
        self.trees += trees

    def __enter__(self) -> Recorder:
        if not _HOOKED:
            sys.addaudithook(_hook)
            _HOOKED.append(True)
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.remove(self)

    def note(self, event: str, args: tuple[Any, ...]) -> None:
        target = _target(event, args)
        if target is None:
            return
        path = os.path.abspath(os.fsdecode(target))
        if path.endswith(".pyc"):
            return
        if event == "llmpack.probe":
            self.probes.add(path)
            return
        if event in ("os.listdir", "os.scandir"):
            self.folders.add(path)
        self.seen.setdefault(path, state(path))


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _ACTIVE and not _UNSEEN and event in _EVENTS:
        _ACTIVE[-1].note(event, args)


class unseen:  # a context manager, named like contextlib's
    """Reads that make a derived cache out of inputs already recorded by their digest (the core
    schemas, named by the digest of kubernetes-validate's RECORD: schemas.py) are not inputs."""

    def __enter__(self) -> None:
        _UNSEEN.append(True)

    def __exit__(self, *exc: object) -> None:
        _UNSEEN.pop()


_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "subprocess.Popen", "llmpack.input", "llmpack.probe"})


def _target(event: str, args: tuple[Any, ...]) -> Any:
    """The path an event reads (None: it writes, or names no path)."""
    if event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        return None if writes or isinstance(path, int) else path
    if event in ("os.listdir", "os.scandir"):
        return "." if args[0] is None else None if isinstance(args[0], int) else args[0]
    if event == "subprocess.Popen":
        return args[0] or (args[1][0] if args[1] else None)
    return args[0]
