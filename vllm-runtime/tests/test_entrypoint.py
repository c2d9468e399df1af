"""The command line: help that documents every variable, usage errors (exit 2), and probes that end in time."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from llmpack_runtime import head, probe, status, worker
from llmpack_runtime.probe import check_server
from llmpack_runtime.settings import Variable
from runtime_harness import RUNTIME_DIR, HealthServer, Runtime, free_port


def entrypoint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmpack_runtime", *args], cwd=RUNTIME_DIR, capture_output=True,
                          text=True, timeout=30, check=False)


@pytest.mark.parametrize(("args", "variables"), [
    (["head", "--help"], head.VARIABLES),
    (["worker", "--help"], worker.VARIABLES),
    (["probe", "--help"], probe.HEAD_VARIABLES + probe.WORKER_VARIABLES),
    (["status", "--help"], status.VARIABLES),
])
def test_help_lists_every_variable_a_command_reads(args: list[str], variables: tuple[Variable, ...]) -> None:
    done = entrypoint(*args)
    assert done.returncode == 0
    for variable in variables:
        assert f"  {variable.name} " in done.stdout


@pytest.mark.parametrize("args", [[], ["probe"], ["probe", "bogus"], ["worker", "extra"], ["status", "extra"],
                                  ["serve"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert entrypoint(*args).returncode == 2


def test_a_malformed_variable_exits_2_naming_it(runtime: Runtime) -> None:
    done = runtime.run("head", TENSOR_PARALLEL_SIZE="eight")
    assert done.returncode == 2
    assert "llmpack: error: environment variable TENSOR_PARALLEL_SIZE is 'eight'" in done.stderr

    done = runtime.run("probe", "worker", LLMPACK_HEAD_ADDRESS=None, HEAD_SVC=None)
    assert done.returncode == 2
    assert "HEAD_SVC is not set" in done.stderr


def test_a_probe_ends_within_its_time_limit_when_something_listens_but_never_answers(runtime: Runtime) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code, out = runtime.probe("worker", LLMPACK_HEAD_ADDRESS=address, LLMPACK_PROBE_TIMEOUT_SECONDS="2")
    assert code == 1 and f"llmpack: worker: unhealthy: Ray at {address} does not answer" in out, out
    assert time.monotonic() - started < 4  # 2 s plus starting Python


def test_check_server_reports_the_status_and_silence() -> None:
    port = free_port()
    with HealthServer(port) as server:
        assert check_server(server.url, 5) is None
        server.status = 503
        assert check_server(server.url, 5) == f"the server answered 503 at {server.url}"
        assert check_server(f"http://127.0.0.1:{port}/v1/models/other", 5) == (
            f"the server answered 404 at http://127.0.0.1:{port}/v1/models/other")
    assert "the server does not answer at" in (check_server(server.url, 5) or "")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        assert "does not answer" in (check_server(f"http://127.0.0.1:{silent.getsockname()[1]}/", 1) or "")
        assert time.monotonic() - started < 3
