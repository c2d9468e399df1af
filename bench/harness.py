"""Running and timing processes for `make bench`: wall time, CPU time, peak memory, medians.

Each timed command is a real process; wall time is measured around spawn and reap, CPU time
and the peak RSS come from `wait4` (the kernel's figures for the child and what it waited for).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    seconds: float        # wall clock
    cpu: float            # user + system of the process and the children it waited for
    max_rss_kib: int      # the largest of those processes (Linux ru_maxrss)


@dataclass(frozen=True)
class Sample:
    """Repeated runs of one measured thing."""

    runs: tuple[Run, ...]

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    def spread(self) -> str:
        """Lowest and highest run, relative to the median: the noise of this figure."""
        low, high = min(r.seconds for r in self.runs), max(r.seconds for r in self.runs)
        return f"-{(1 - low / self.median) * 100:.0f}/+{(high / self.median - 1) * 100:.0f}%"


def run(command: Sequence[str], env: Mapping[str, str] | None = None, stdout: Path | None = None) -> Run:
    """Run one process to completion; stderr goes to a temp file (no pipe to fill), shown on failure."""
    with tempfile.TemporaryFile() as err, open(stdout or os.devnull, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), env=dict(env) if env is not None else None, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            err.seek(0)
            raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}\n{err.read().decode()[-3000:]}")
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def run_all(commands: Sequence[tuple[Sequence[str], Path | None]], env: Mapping[str, str] | None = None) -> Run:
    """Run commands one after the other (a Helm user's loop); one Run for the whole loop."""
    started = time.perf_counter()
    runs = [run(command, env, stdout) for command, stdout in commands]
    return Run(time.perf_counter() - started, sum(r.cpu for r in runs), max(r.max_rss_kib for r in runs))


def interleaved(repeats: int, *subjects: Callable[[], Run],
                before: Callable[[], None] | None = None) -> list[Sample]:
    """Run each subject `repeats` times, alternating their order each round (ABBA...), so that
    background load hits all of them alike; `before` runs untimed before each timed run."""
    runs: list[list[Run]] = [[] for _ in subjects]
    for round_ in range(repeats):
        order = list(range(len(subjects)))
        if round_ % 2:
            order.reverse()
        for index in order:
            if before:
                before()
            runs[index].append(subjects[index]())
    return [Sample(tuple(r)) for r in runs]


@dataclass(frozen=True)
class Memory:
    tree_peak_kib: int             # most RSS resident at once in the process tree (sampled)
    peaks_kib: dict[str, list[int]]   # per program name, each of its processes' high-water mark (VmHWM, sampled)
    max_rss_kib: int               # wait4's ru_maxrss (exact): the largest single process of the tree


def memory(command: Sequence[str], env: Mapping[str, str] | None = None, every: float = 0.005) -> Memory:
    """Peak memory of a process tree: /proc sampled every `every` s, and wait4's exact ru_maxrss."""
    process = subprocess.Popen(list(command), env=dict(env) if env is not None else None,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tree_peak, peaks = 0, dict[tuple[str, int], int]()
    done = threading.Event()

    def sample() -> None:
        nonlocal tree_peak
        while not done.is_set():
            total = 0
            for pid in _tree(process.pid):
                name, rss, hwm = _status(pid)
                total += rss
                if name and hwm:     # not a process that ended (or a fork not yet exec'd) meanwhile
                    peaks[name, pid] = max(peaks.get((name, pid), 0), hwm)
            tree_peak = max(tree_peak, total)
            time.sleep(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}")
    by_name: dict[str, list[int]] = {}
    for (name, _), peak in sorted(peaks.items()):
        by_name.setdefault(name, []).append(peak)
    return Memory(tree_peak, by_name, usage.ru_maxrss)


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
    return found


def _status(pid: int) -> tuple[str, int, int]:
    """Program name, VmRSS and VmHWM (KiB) of a live process; no name and zeros once it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
    except OSError:
        return "", 0, 0
    rss, hwm = (int(fields.get(key, "0 kB").split()[0]) for key in ("VmRSS", "VmHWM"))
    return fields.get("Name", "").strip(), rss, hwm


def files_with_times(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
