"""`worker`: wait for the head's GCS, join it with `ray start --block`, and leave when the head goes away.

Ray alone notices a dead head only after about a minute, and a head that restarted at the same address leaves
its old workers orphaned (they stay up but belong to no cluster). A watchdog therefore asks the head every
LLMPACK_HEAD_CHECK_SECONDS: after LLMPACK_HEAD_CHECK_FAILURES failures in a row, or at once when the GCS answers
with another cluster id, the worker stops its Ray node and exits non-zero so that Kubernetes restarts the pod.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from llmpack_runtime import ray_cluster, settings
from llmpack_runtime.deadline import Deadline
from llmpack_runtime.errors import CommandFailed, HeadLost, HeadUnreachable, RayUnavailable
from llmpack_runtime.log import say
from llmpack_runtime.settings import Env, RayNode, Timing

VARIABLES = (
    *settings.HEAD_ADDRESS_VARIABLES, settings.POD_IP, settings.RAY_NUM_GPUS, settings.RAY_START_ARGS,
    settings.RAY_WAIT, settings.QUERY_TIMEOUT, settings.HEAD_CHECK, settings.HEAD_CHECK_FAILURES,
)
FIRST_BACKOFF = 1.0
LAST_BACKOFF = 16.0
STOP_GRACE = 5.0  # seconds the Ray node gets after SIGTERM; without a head, `ray start` would drain for 30 s


@dataclass(frozen=True)
class WorkerSettings:
    head_address: str
    node: RayNode
    timing: Timing

    @classmethod
    def from_env(cls, env: Env) -> WorkerSettings:
        return cls(settings.head_address(env), RayNode.from_env(env), Timing.from_env(env))


def run(config: WorkerSettings) -> int:
    """Join the head and stay attached; 0 only when asked to stop (SIGTERM), else an error is raised."""
    joined = wait_for_head(config.head_address, config.timing)
    command = ray_cluster.start_command(config.node, config.head_address)
    say(f"joining the Ray head at {config.head_address} (cluster {joined.cluster_id[:12]}): {' '.join(command)}")
    node = subprocess.Popen(command, process_group=0)  # its own group, so the whole node can be stopped
    stopping = _forward_termination(node)
    try:
        watch(node, command, config.head_address, joined.cluster_id, config.timing, stopping)
    finally:
        _stop(node)
    return 0


def wait_for_head(address: str, timing: Timing) -> ray_cluster.ClusterState:
    """Ask the head's GCS with a doubling pause (1 s up to 16 s) until it answers or `timing.wait` is over."""
    deadline = Deadline.after(timing.wait)
    pause = FIRST_BACKOFF
    while True:
        try:
            return ray_cluster.query(address, timing.query)
        except RayUnavailable as err:
            reason = err.reason
        if deadline.expired:
            raise HeadUnreachable(address, deadline.elapsed(), reason)
        say(f"waiting for the Ray head at {address}: {reason} ({deadline.elapsed():.0f}s)")
        time.sleep(min(pause, deadline.remaining()))
        pause = min(pause * 2, LAST_BACKOFF)


def watch(node: subprocess.Popen[bytes], command: Sequence[str], address: str, cluster_id: str, timing: Timing,
          stopping: threading.Event) -> None:
    """Return when asked to stop; raise when the Ray node ends by itself or the head is lost or replaced."""
    failures = 0
    while True:
        try:
            code = node.wait(timeout=timing.head_check)
        except subprocess.TimeoutExpired:
            pass
        else:
            if stopping.is_set():
                return
            raise CommandFailed(command, f"ended with exit code {code}; this worker left the Ray cluster")
        try:
            state = ray_cluster.query(address, timing.query)
        except RayUnavailable as err:
            failures += 1
            say(f"head check {failures} of {timing.head_check_failures} failed: {err.reason}")
            if failures >= timing.head_check_failures:
                raise HeadLost(address, f"{failures} checks failed in a row (last: {err.reason})") from None
            continue
        if state.cluster_id != cluster_id:
            raise HeadLost(address, f"the head restarted (cluster {state.cluster_id[:12]}, "
                                    f"this worker joined {cluster_id[:12]})")
        failures = 0


def _forward_termination(node: subprocess.Popen[bytes]) -> threading.Event:
    """On SIGTERM or SIGINT, ask `ray start` to drain and stop its node, and set the returned event."""
    stopping = threading.Event()

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return stopping


def _stop(node: subprocess.Popen[bytes]) -> None:
    """Stop the Ray node's whole process group: SIGTERM, then SIGKILL for whatever is left after STOP_GRACE."""
    _signal_group(node.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(timeout=STOP_GRACE)
    _signal_group(node.pid, signal.SIGKILL)
    node.wait()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)
