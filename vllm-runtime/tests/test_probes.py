"""`probe`: what each probe says in each state of a real cluster, from no cluster to a dead rank."""

from __future__ import annotations

from llmpack_runtime.probe import check_server
from runtime_harness import HealthServer, Runtime, free_port, wait_until

HEAD_KINDS = ("startup", "readiness", "liveness")


def test_probes_follow_the_cluster_from_nothing_to_ready_to_a_dead_rank(runtime: Runtime) -> None:
    port = free_port()
    runtime.base["LLMPACK_SERVER_PORT"] = str(port)
    url = f"http://127.0.0.1:{port}/v1/models/llama"

    # no cluster: every probe fails, saying Ray does not answer
    for kind in (*HEAD_KINDS, "worker"):
        code, out = runtime.probe(kind)
        assert code == 1 and f"llmpack: {kind}: unhealthy: Ray at " in out and "does not answer" in out, out

    # the head alone: its GCS answers (worker probe ok), but the cluster is incomplete
    runtime.start("head")
    wait_until(lambda: "Ray nodes 1 of 2" in runtime.probe("liveness")[1], 60, "the head's own Ray node")
    assert runtime.probe("worker")[0] == 0
    for kind in HEAD_KINDS:
        code, out = runtime.probe(kind)
        assert code == 1 and "the Ray cluster is incomplete: Ray nodes 1 of 2, GPUs 1 of 2" in out, out

    # both nodes, no server yet: alive, not ready
    worker = runtime.start("worker")
    assert runtime.probe_until("liveness", 0, 60) == "llmpack: liveness: healthy: Ray nodes 2 of 2, GPUs 2 of 2"
    for kind in ("startup", "readiness"):
        code, out = runtime.probe(kind)
        assert code == 1 and f"the server does not answer at {url}" in out, out

    with HealthServer(port, status=503) as server:
        # the server answers but is still loading
        code, out = runtime.probe("readiness")
        assert code == 1 and f"the server answered 503 at {url}" in out, out

        # complete and serving
        server.status = 200
        for kind in ("startup", "readiness"):
            assert runtime.probe(kind) == (0, f"llmpack: {kind}: healthy: Ray nodes 2 of 2, GPUs 2 of 2; "
                                              f"{url} answered 200")

        # a rank dies while the health route keeps answering 200
        runtime.kill(worker)
        out = runtime.probe_until("readiness", 1, 40)
        assert "the Ray cluster is incomplete: Ray nodes 1 of 2, GPUs 1 of 2" in out, out
        assert check_server(url, 5) is None, "the health route should still answer 200"
        assert runtime.probe("liveness")[0] == 1
