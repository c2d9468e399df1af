"""`head`: refuses an unfinished model, waits for every node and GPU, then becomes the server; or times out."""

from __future__ import annotations

import json
import re
import time

import pytest

from runtime_harness import MODEL, RAY_IP, Runtime, get_json, wait_until

COUNTS = {"expected_nodes": 2, "expected_gpus": 2, "tensor_parallel_size": 1, "pipeline_parallel_size": 2}


def test_head_waits_for_two_nodes_then_execs_the_server_with_vllm_replaced_by_a_stand_in_since_there_is_no_gpu(
        runtime: Runtime) -> None:
    head = runtime.start("head", "--max-model-len=8192", "--enforce-eager")
    wait_until(lambda: "llmpack: waiting for Ray nodes: 1 of 2, GPUs 1 of 2 (" in head.output(), 60,
               "the head to report one node of two")
    time.sleep(2)
    assert head.running() and not runtime.record.exists(), "the server started before the worker joined"
    # the head started the cluster status endpoint for the smoke test: Ray answers, one node is missing
    incomplete = (200, {**COUNTS, "state": "incomplete", "alive_nodes": 1, "gpus": 1})
    wait_until(lambda: get_json(runtime.status_url) == incomplete, 60, "the status endpoint to see one node",
               interval=2)

    runtime.start("worker")
    wait_until(runtime.record.exists, 60, "the server to start after the worker joined")

    started = json.loads(runtime.record.read_text())
    assert started["argv"] == [
        "--model_name=llama", f"--model_dir={runtime.model_dir}",
        "--tensor-parallel-size=1", "--pipeline-parallel-size=2",
        "--max-model-len=8192", "--enforce-eager",
    ]
    assert started["pid"] == head.pid, "the server must replace the head process (exec), not run as its child"
    assert started["ray_address"] == f"{RAY_IP}:{runtime.port}"
    assert "Ray cluster complete: Ray nodes: 2 of 2, GPUs 2 of 2" in head.output()
    # the endpoint outlives the head's exec into the server
    complete = (200, {**COUNTS, "state": "complete", "alive_nodes": 2, "gpus": 2})
    wait_until(lambda: get_json(runtime.status_url) == complete, 60, "the status endpoint to see both nodes",
               interval=2)


@pytest.mark.parametrize(("marker", "problem"), [
    (None, "does not exist"),
    ("meta-llama/Meta-Llama-3-8B-Instruct@0123456789abcdef", "holds 'meta-llama/Meta-Llama-3-8B-Instruct@0123"),
    ("", f"holds '', expected '{MODEL}'"),
])
def test_head_refuses_to_start_without_a_marker_for_this_model_and_revision(
        runtime: Runtime, marker: str | None, problem: str) -> None:
    path = runtime.model_dir / ".llmpack-complete"
    if marker is None:
        path.unlink()
    else:
        path.write_text(marker)

    done = runtime.run("head")

    assert done.returncode == 1
    assert f"llmpack: error: the model is not ready: {path} {problem}" in done.stderr
    assert "the download Job has not finished for this model and revision" in done.stderr
    assert "starting the Ray head" not in done.stderr


def test_head_gives_up_with_a_clear_message_when_the_worker_never_comes(runtime: Runtime) -> None:
    head = runtime.start("head", LLMPACK_RAY_WAIT_SECONDS="4")

    assert head.wait(timeout=60) == 1
    out = head.output()
    assert re.search(r"llmpack: error: the Ray cluster is still incomplete after \d+s "
                     r"\(Ray nodes: 1 of 2, GPUs 1 of 2\); check that the worker pods are running", out), out
    assert not runtime.record.exists()
    wait_until(lambda: get_json(runtime.status_url, timeout=2) is None, 20,
               "the status endpoint to stop with the head that started it")
