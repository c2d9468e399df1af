"""`status`: the cluster status endpoint's documents, its answer while Ray is down, and a port it cannot have.

Its answers from a live cluster are tested with the head in test_head.py and with the smoke test in
tests/test_smoke_job.py.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from llmpack_runtime.errors import BadVariable
from llmpack_runtime.ray_cluster import ClusterState
from llmpack_runtime.settings import Parallelism
from llmpack_runtime.status import CachedReader, Reading, StatusSettings, report
from runtime_harness import RAY_IP, Runtime, get_json, wait_until

EXPECTED = {"expected_nodes": 2, "expected_gpus": 4, "tensor_parallel_size": 2, "pipeline_parallel_size": 2}


@pytest.mark.parametrize(("state", "code", "document"), [
    (ClusterState(2, 4.0, "id"), 200, {"state": "complete", "alive_nodes": 2, "gpus": 4}),
    (ClusterState(1, 2.0, "id"), 200, {"state": "incomplete", "alive_nodes": 1, "gpus": 2}),
    (ClusterState(2, 3.5, "id"), 200, {"state": "incomplete", "alive_nodes": 2, "gpus": 3.5}),
    (None, 503, {"state": "unavailable", "reason": "Ray at h:1 does not answer: refused"}),
])
def test_the_document_says_what_ray_has_and_what_the_head_expects(
        state: ClusterState | None, code: int, document: dict[str, Any]) -> None:
    reading = report(Parallelism(2, 2, 2), state, "Ray at h:1 does not answer: refused")
    assert reading == Reading(code, {**EXPECTED, **document})


def test_one_reading_serves_every_request_until_it_is_old() -> None:
    taken: list[int] = []

    def take() -> Reading:
        taken.append(1)
        return Reading(200, {"n": len(taken)})

    reader = CachedReader(take, max_age=3600)
    threads = [threading.Thread(target=reader.get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reader.get() == Reading(200, {"n": 1}) and len(taken) == 1

    assert CachedReader(take, max_age=0).get() == Reading(200, {"n": 2})


def test_a_failing_reading_costs_one_answer_not_the_endpoint() -> None:
    def take() -> Reading:
        raise ValueError("bug")

    assert CachedReader(take).get() == Reading(500, {"state": "error", "reason": "ValueError: bug"})


def test_status_answers_503_with_the_reason_while_ray_is_not_up(runtime: Runtime) -> None:
    runtime.start("status")  # nothing listens at RAY_IP:runtime.port

    answer = wait_until(lambda: get_json(runtime.status_url), 30, "the status endpoint to answer")

    assert answer == (503, {
        "state": "unavailable", "expected_nodes": 2, "expected_gpus": 2, "tensor_parallel_size": 1,
        "pipeline_parallel_size": 2,
        "reason": f"Ray at {RAY_IP}:{runtime.port} does not answer: connection refused (nothing listens there yet)",
    })
    other = runtime.status_url.replace("/llmpack/v1/cluster", "/metrics")
    assert get_json(other) == (404, {"state": "error", "reason": "no such path; ask GET /llmpack/v1/cluster"})


def test_status_says_so_and_exits_when_its_port_is_taken(runtime: Runtime) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", runtime.status_port))
        taken.listen()
        done = runtime.run("status")
    assert done.returncode == 1
    assert (f"llmpack: status: error: the cluster status endpoint cannot listen on 127.0.0.1:{runtime.status_port} "
            "(Address already in use); the head serves on without it") in done.stderr


@pytest.mark.parametrize(("env", "message"), [
    ({"LLMPACK_STATUS_PORT": "70000"}, "LLMPACK_STATUS_PORT is '70000': expected a TCP port (1-65535)"),
    ({"LLMPACK_STATUS_PORT": "http"}, "LLMPACK_STATUS_PORT is 'http': expected a whole number of at least 1"),
])
def test_a_bad_status_port_is_a_usage_error(env: dict[str, str], message: str) -> None:
    base = {"TENSOR_PARALLEL_SIZE": "1", "PIPELINE_PARALLEL_SIZE": "2"}
    with pytest.raises(BadVariable) as caught:
        StatusSettings.from_env({**base, **env})
    assert caught.value.exit_code == 2 and str(caught.value).endswith(message)


def test_status_listens_on_every_interface_at_8081_by_default() -> None:
    config = StatusSettings.from_env({"TENSOR_PARALLEL_SIZE": "1", "PIPELINE_PARALLEL_SIZE": "2", "POD_IP": "10.1.2.3"})
    assert (config.host, config.port, config.ray_address) == ("0.0.0.0", 8081, "10.1.2.3:6379")  # noqa: S104
