"""`status`: the head's Ray cluster as read-only JSON, for the bundle's smoke test Job.

The smoke Job has no API token and cannot exec into pods, so it cannot run the seed's `nvidia-smi` step itself.
The head therefore answers `GET /llmpack/v1/cluster` on LLMPACK_STATUS_PORT with what its probes count:

    200 {"state": "complete", "alive_nodes": 2, "gpus": 2, "expected_nodes": 2, "expected_gpus": 2,
         "tensor_parallel_size": 1, "pipeline_parallel_size": 2}
    503 {"state": "unavailable", "reason": "Ray at ... does not answer: ...", "expected_nodes": 2, ...}

"state" is "incomplete" (still 200: Ray answered) while nodes or GPUs are missing. The head starts this server as a
child process before Ray, so it answers while Ray starts and outlives the head's exec into the model server; it
stops when its parent goes. Readings are taken one at a time and reused for CACHE_SECONDS, so any number of requests
costs at most one Ray reading (a child process, bounded by LLMPACK_PROBE_TIMEOUT_SECONDS) per CACHE_SECONDS.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmpack_runtime import ray_cluster, settings
from llmpack_runtime.errors import EndpointUnavailable, RuntimeFailure
from llmpack_runtime.log import say
from llmpack_runtime.settings import Env, Parallelism

PATH = "/llmpack/v1/cluster"
VARIABLES = (
    *settings.PARALLELISM_VARIABLES, settings.POD_IP, settings.RAY_PORT, settings.QUERY_TIMEOUT,
    settings.STATUS_ADDRESS, settings.STATUS_PORT,
)
CACHE_SECONDS = 5.0
CLIENT_SECONDS = 10.0  # a client that sends nothing for this long is dropped
PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class StatusSettings:
    parallelism: Parallelism
    ray_address: str
    timeout: float
    host: str
    port: int

    @classmethod
    def from_env(cls, env: Env) -> StatusSettings:
        return cls(
            parallelism=Parallelism.from_env(env),
            ray_address=settings.join_address(settings.text(env, settings.POD_IP), settings.port(env)),
            timeout=settings.seconds(env, settings.QUERY_TIMEOUT),
            host=settings.text(env, settings.STATUS_ADDRESS),
            port=settings.tcp_port(env, settings.STATUS_PORT),
        )

    @property
    def listen_address(self) -> str:
        return settings.join_address(self.host, self.port)


@dataclass(frozen=True)
class Reading:
    """One answer of the endpoint: an HTTP status and its JSON document."""

    code: int
    document: dict[str, Any]

    def body(self) -> bytes:
        return (json.dumps(self.document, sort_keys=True) + "\n").encode()


def report(expected: Parallelism, state: ray_cluster.ClusterState | None, reason: str = "") -> Reading:
    """The document for a cluster reading, or for no reading (state None) and why."""
    document: dict[str, Any] = {
        "expected_nodes": expected.nodes, "expected_gpus": expected.gpus,
        "tensor_parallel_size": expected.tensor, "pipeline_parallel_size": expected.pipeline,
    }
    if state is None:
        return Reading(503, {**document, "state": "unavailable", "reason": reason})
    gpus = int(state.gpus) if state.gpus.is_integer() else state.gpus
    complete = "complete" if state.satisfies(expected) else "incomplete"
    return Reading(200, {**document, "state": complete, "alive_nodes": state.nodes, "gpus": gpus})


def read(config: StatusSettings) -> Reading:
    try:
        state = ray_cluster.query(config.ray_address, config.timeout)
    except RuntimeFailure as err:
        return report(config.parallelism, None, str(err))
    return report(config.parallelism, state)


class CachedReader:
    """Take a reading at most once per `max_age` seconds, one at a time; concurrent callers share it."""

    def __init__(self, take: Callable[[], Reading], max_age: float = CACHE_SECONDS) -> None:
        self._take = take
        self._max_age = max_age
        self._lock = threading.Lock()
        self._last: Reading | None = None
        self._taken = 0.0

    def get(self) -> Reading:
        with self._lock:
            if self._last is None or time.monotonic() - self._taken >= self._max_age:
                self._last = self._safely()
                self._taken = time.monotonic()
            return self._last

    def _safely(self) -> Reading:
        try:
            return self._take()
        except Exception as err:  # a bug must cost one answer, never the endpoint
            return Reading(500, {"state": "error", "reason": f"{type(err).__name__}: {err}"})


def serve(config: StatusSettings) -> int:
    """Serve until the parent process goes away; EndpointUnavailable when the address cannot be bound."""
    reader = CachedReader(lambda: read(config))
    try:
        server = _server_class(config.host)((config.host, config.port), _handler(reader))
    except OSError as err:
        raise EndpointUnavailable(config.listen_address, err.strerror or str(err)) from None
    say(f"status: serving the Ray cluster's nodes and GPUs at http://{config.listen_address}{PATH}")
    _stop_with_parent(server)
    with server:
        server.serve_forever(poll_interval=0.5)
    return 0


def spawn() -> subprocess.Popen[bytes] | None:
    """Start `status` next to the head. Failing to start it is reported, never raised: serving goes on without it."""
    command = [sys.executable, "-m", "llmpack_runtime", "status"]
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, env=ray_cluster.child_env())
    except OSError as err:
        say(f"the cluster status endpoint cannot be started ({err.strerror or err}); serving without it")
        return None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        say(f"status: a request from {client_address[0]} failed: {sys.exc_info()[1]}")


class _Server6(_Server):
    address_family = socket.AF_INET6


def _server_class(host: str) -> type[_Server]:
    return _Server6 if ":" in host else _Server


def _handler(reader: CachedReader) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = CLIENT_SECONDS

        def version_string(self) -> str:
            return "llmpack-status"

        def do_GET(self) -> None:
            if self.path.partition("?")[0] == PATH:
                self._send(reader.get())
            else:
                self._send(Reading(404, {"state": "error", "reason": f"no such path; ask GET {PATH}"}))

        def _send(self, reading: Reading) -> None:
            body = reading.body()
            self.send_response(reading.code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the smoke Job polls; one log line per request would drown the head's own

    return Handler


def _stop_with_parent(server: http.server.HTTPServer) -> None:
    """Shut the server down once the process that started it (the head, then the model server) is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        say("status: the head process is gone; stopping the cluster status endpoint")
        server.shutdown()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
