"""`worker`: joins the head, gives up when no head appears, and leaves when its head dies or restarts."""

from __future__ import annotations

import re
import signal
import time

from runtime_harness import RAY_IP, Proc, Runtime, session_members, wait_until


def start_cluster(runtime: Runtime, **worker_env: str) -> tuple[Proc, Proc]:
    """A head and a worker, both through the entrypoint; returns once the head has exec'd the server."""
    head = runtime.start("head")
    worker = runtime.start("worker", **worker_env)
    wait_until(runtime.record.exists, 90, "the head to see the worker join and start the server")
    assert worker.running()
    assert f"joining the Ray head at {RAY_IP}:{runtime.port}" in worker.output()
    return head, worker


def test_worker_gives_up_after_the_wait_when_no_head_answers(runtime: Runtime) -> None:
    worker = runtime.start("worker", LLMPACK_RAY_WAIT_SECONDS="4")

    assert worker.wait(timeout=30) == 1
    out = worker.output()
    address = re.escape(f"{RAY_IP}:{runtime.port}")
    assert re.search(rf"llmpack: error: no Ray head answered at {address} within \d+s "
                     r"\(last: connection refused \(nothing listens there yet\)\)", out), out
    assert out.count("llmpack: waiting for the Ray head at") >= 2, out  # pauses of 1 s, 2 s, then the limit


def test_worker_exits_non_zero_soon_after_its_head_dies(runtime: Runtime) -> None:
    head, worker = start_cluster(runtime)

    runtime.kill(head)
    killed = time.monotonic()

    assert worker.wait(timeout=30) == 1
    assert time.monotonic() - killed < 30  # Ray alone takes about a minute
    assert re.search(r"lost the Ray head at \S+: 3 checks failed in a row", worker.output()), worker.output()
    wait_until(lambda: not session_members(worker.pid), 20, "the worker's Ray node to stop with it")


def test_worker_leaves_a_head_that_restarted_at_the_same_address(runtime: Runtime) -> None:
    # so many failures allowed that only the new cluster id can make the worker leave in time
    head, worker = start_cluster(runtime, LLMPACK_HEAD_CHECK_FAILURES="1000")

    runtime.kill(head)
    runtime.start("head", PIPELINE_PARALLEL_SIZE="1")

    assert worker.wait(timeout=45) == 1
    assert re.search(r"lost the Ray head at \S+: the head restarted \(cluster \w+, this worker joined \w+\)",
                     worker.output()), worker.output()


def test_worker_stops_its_ray_node_and_exits_0_on_sigterm(runtime: Runtime) -> None:
    _, worker = start_cluster(runtime)

    worker.popen.send_signal(signal.SIGTERM)  # what the kubelet sends when the pod is deleted

    assert worker.wait(timeout=20) == 0
    wait_until(lambda: not session_members(worker.pid), 10, "the worker's Ray node to stop with it")
