"""`probe`: the head's startup, readiness and liveness checks, and the worker's check of its head.

A head is healthy only when Ray has every node and GPU: vLLM's health route can keep answering 200 after a rank
died, so the HTTP check alone would keep a broken model in service. Startup and readiness also need the server's
health route to answer 200; liveness looks at Ray only, so a model that is still loading is not restarted.
Every probe ends within LLMPACK_PROBE_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from llmpack_runtime import ray_cluster, settings
from llmpack_runtime.deadline import Deadline
from llmpack_runtime.errors import RayUnavailable
from llmpack_runtime.settings import Env, Parallelism

HEAD_KINDS = ("startup", "readiness", "liveness")
KINDS = (*HEAD_KINDS, "worker")
HEAD_VARIABLES = (
    *settings.PARALLELISM_VARIABLES, settings.RAY_PORT, settings.POD_IP, settings.MODEL_NAME,
    settings.SERVER_PORT, settings.HEALTH_URL, settings.QUERY_TIMEOUT,
)
WORKER_VARIABLES = (*settings.HEAD_ADDRESS_VARIABLES, settings.QUERY_TIMEOUT)
HARD_LIMIT_MARGIN = 0.5


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    message: str


@dataclass(frozen=True)
class HeadProbeSettings:
    parallelism: Parallelism
    ray_address: str
    health_url: str | None  # None: liveness, which does not ask the server
    timeout: float

    @classmethod
    def from_env(cls, env: Env, kind: str) -> HeadProbeSettings:
        url = None
        if kind != "liveness":
            url = settings.optional_text(env, settings.HEALTH_URL) or (
                f"http://127.0.0.1:{settings.positive_int(env, settings.SERVER_PORT)}"
                f"/v1/models/{settings.text(env, settings.MODEL_NAME)}")
        address = settings.join_address(settings.text(env, settings.POD_IP), settings.port(env))
        return cls(Parallelism.from_env(env), address, url, settings.seconds(env, settings.QUERY_TIMEOUT))


def soft_limit(timeout: float) -> float:
    """The budget of the checks themselves: a little less than the hard limit, so they report their own cause."""
    return max(timeout - HARD_LIMIT_MARGIN, timeout / 2)


def bounded(kind: str, timeout: float, check: Callable[[], ProbeResult]) -> ProbeResult:
    """Run `check`, cut off after `timeout` seconds whatever it waits for (a hard limit on top of its own)."""
    try:
        with _alarm(timeout):
            return check()
    except _Expired:
        return ProbeResult(False, f"{kind}: unhealthy: no result within {timeout:g}s")


def probe_head(kind: str, config: HeadProbeSettings) -> ProbeResult:
    deadline = Deadline.after(soft_limit(config.timeout))
    try:
        state = ray_cluster.query(config.ray_address, deadline.remaining())
    except RayUnavailable as err:
        return ProbeResult(False, f"{kind}: unhealthy: {err}")
    ray = f"Ray nodes {state.progress(config.parallelism)}"
    if not state.satisfies(config.parallelism):
        return ProbeResult(False, f"{kind}: unhealthy: the Ray cluster is incomplete: {ray}")
    if config.health_url is None:
        return ProbeResult(True, f"{kind}: healthy: {ray}")
    problem = check_server(config.health_url, deadline.remaining())
    if problem is not None:
        return ProbeResult(False, f"{kind}: unhealthy: {problem} ({ray})")
    return ProbeResult(True, f"{kind}: healthy: {ray}; {config.health_url} answered 200")


def probe_worker(head_address: str, timeout: float) -> ProbeResult:
    try:
        state = ray_cluster.query(head_address, soft_limit(timeout))
    except RayUnavailable as err:
        return ProbeResult(False, f"worker: unhealthy: {err}")
    return ProbeResult(True, f"worker: healthy: the head at {head_address} answers ({state.nodes} Ray nodes)")


def check_server(url: str, timeout: float) -> str | None:
    """None when GET `url` answers 200 within `timeout`, else what went wrong. Proxies are never used."""
    if timeout <= 0:
        return f"no time left to ask {url}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        return f"the server does not answer at {url} ({reason})"
    return None if status == 200 else f"the server answered {status} at {url}"


class _Expired(Exception):
    """The probe's hard time limit passed."""


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
