"""Reading KServe's environment contract: defaults, fallbacks, and what counts as a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmpack_runtime import marker
from llmpack_runtime.errors import BadVariable, ModelNotReady
from llmpack_runtime.head import HeadSettings, server_command
from llmpack_runtime.probe import HeadProbeSettings
from llmpack_runtime.ray_cluster import ClusterState
from llmpack_runtime.settings import Parallelism, head_address

HEAD_ENV = {"TENSOR_PARALLEL_SIZE": "2", "PIPELINE_PARALLEL_SIZE": "3", "MODEL_NAME": "llama"}


@pytest.mark.parametrize(("env", "expected"), [
    ({"TENSOR_PARALLEL_SIZE": "1", "PIPELINE_PARALLEL_SIZE": "2"}, Parallelism(1, 2, 2)),
    ({"TENSOR_PARALLEL_SIZE": "2", "PIPELINE_PARALLEL_SIZE": "2", "RAY_NODE_COUNT": "4"}, Parallelism(2, 2, 4)),
    ({"TENSOR_PARALLEL_SIZE": "4", "PIPELINE_PARALLEL_SIZE": "2", "RAY_NODE_COUNT": ""}, Parallelism(4, 2, 2)),
])
def test_ray_node_count_falls_back_to_the_pipeline_size_as_kserve_0_15_0_does(
        env: dict[str, str], expected: Parallelism) -> None:
    assert Parallelism.from_env(env) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"PIPELINE_PARALLEL_SIZE": "2"}, "environment variable TENSOR_PARALLEL_SIZE is not set: GPUs per pod"),
    ({"TENSOR_PARALLEL_SIZE": "two", "PIPELINE_PARALLEL_SIZE": "2"},
     "environment variable TENSOR_PARALLEL_SIZE is 'two': expected a whole number of at least 1"),
    ({"TENSOR_PARALLEL_SIZE": "1", "PIPELINE_PARALLEL_SIZE": "0"},
     "environment variable PIPELINE_PARALLEL_SIZE is '0': expected a whole number of at least 1"),
    ({"TENSOR_PARALLEL_SIZE": "1", "PIPELINE_PARALLEL_SIZE": "2", "RAY_NODE_COUNT": "-1"},
     "environment variable RAY_NODE_COUNT is '-1'"),
])
def test_bad_parallelism_is_a_usage_error_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(BadVariable) as caught:
        Parallelism.from_env(env)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("nodes", "gpus", "ok"), [(2, 2.0, True), (3, 4.0, True), (1, 2.0, False), (2, 1.0, False)])
def test_a_cluster_is_complete_with_every_node_and_every_gpu(nodes: int, gpus: float, ok: bool) -> None:
    assert ClusterState(nodes, gpus, "id").satisfies(Parallelism(1, 2, 2)) is ok


@pytest.mark.parametrize(("env", "expected"), [
    ({"HEAD_SVC": "llama-head-3", "POD_NAMESPACE": "llm"}, "llama-head-3.llm.svc.cluster.local:6379"),
    ({"HEAD_SVC": "llama-head-3", "POD_NAMESPACE": "llm", "RAY_PORT": "6380"},
     "llama-head-3.llm.svc.cluster.local:6380"),
    ({"LLMPACK_HEAD_ADDRESS": "127.0.0.1:41000"}, "127.0.0.1:41000"),
])
def test_workers_find_the_head_through_kserves_head_service(env: dict[str, str], expected: str) -> None:
    assert head_address(env) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"POD_NAMESPACE": "llm"}, "HEAD_SVC is not set: needed to find the head (or set LLMPACK_HEAD_ADDRESS)"),
    ({"LLMPACK_HEAD_ADDRESS": "head-without-port"}, "LLMPACK_HEAD_ADDRESS is 'head-without-port': expected HOST:PORT"),
    ({"HEAD_SVC": "h", "POD_NAMESPACE": "n", "RAY_PORT": "70000"}, "RAY_PORT is '70000': expected a TCP port"),
])
def test_a_worker_without_a_head_address_is_a_usage_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(BadVariable, match=message.replace("(", r"\(").replace(")", r"\)")):
        head_address(env)


def test_server_command_defaults_to_kserves_huggingfaceserver() -> None:
    config = HeadSettings.from_env(HEAD_ENV)
    assert server_command(config, ["--max-model-len=8192"]) == [
        "python3", "-m", "huggingfaceserver", "--model_name=llama", "--model_dir=/mnt/models",
        "--tensor-parallel-size=2", "--pipeline-parallel-size=3", "--max-model-len=8192",
    ]
    assert config.marker == Path("/mnt/models/.llmpack-complete")
    assert config.node.head_address == "127.0.0.1:6379"


def test_server_command_prefix_is_split_like_a_shell_would() -> None:
    env = {**HEAD_ENV, "LLMPACK_SERVER_COMMAND": "/opt/venv/bin/python3 -X 'dev mode' -m srv",
           "MODEL_DIR": "/models/a", "LLMPACK_MARKER_FILE": "done.txt"}
    config = HeadSettings.from_env(env)
    assert server_command(config, [])[:5] == ["/opt/venv/bin/python3", "-X", "dev mode", "-m", "srv"]
    assert config.marker == Path("/models/a/done.txt")


def test_the_health_url_defaults_to_the_models_v1_route_and_can_be_replaced() -> None:
    assert HeadProbeSettings.from_env(HEAD_ENV, "readiness").health_url == "http://127.0.0.1:8080/v1/models/llama"
    env = {**HEAD_ENV, "LLMPACK_SERVER_PORT": "9000"}
    assert HeadProbeSettings.from_env(env, "startup").health_url == "http://127.0.0.1:9000/v1/models/llama"
    env = {**HEAD_ENV, "LLMPACK_HEALTH_URL": "http://127.0.0.1:8080/health"}
    assert HeadProbeSettings.from_env(env, "readiness").health_url == "http://127.0.0.1:8080/health"
    assert HeadProbeSettings.from_env(HEAD_ENV, "liveness").health_url is None


def test_without_a_named_model_any_marker_will_do(tmp_path: Path) -> None:
    (tmp_path / ".llmpack-complete").write_text("org/model@abc\n")
    assert marker.check(tmp_path / ".llmpack-complete", None) == "org/model@abc"
    assert marker.check(tmp_path / ".llmpack-complete", "org/model@abc") == "org/model@abc"
    with pytest.raises(ModelNotReady, match="cannot be read"):
        marker.check(tmp_path, None)  # a folder where the marker file should be
