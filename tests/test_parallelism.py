"""The seed's vocabulary (TENSOR_PARALLEL_SIZE, PIPELINE_PARALLEL_SIZE, workerSpec.size)
becomes workerSpec.tensorParallelSize / pipelineParallelSize and GPU counts KServe accepts."""

from __future__ import annotations

from typing import Any

import pytest

from generator.pipeline import Bundle, build
from helpers import ProjectFactory


def objects(bundle: Bundle) -> dict[str, dict[str, Any]]:
    return {str(f.obj["kind"]): f.obj for f in bundle.files if f.obj is not None}


def gpus(container: dict[str, Any]) -> tuple[str, str]:
    resources = container["resources"]
    return resources["requests"]["nvidia.com/gpu"], resources["limits"]["nvidia.com/gpu"]


def render(make_project: ProjectFactory, values: str) -> Bundle:
    return build(make_project(values), "test")


def test_seed_example_tp1_pp2_from_env(make_project: ProjectFactory) -> None:
    bundle = render(make_project, """
        model:
          env:
            - {name: TENSOR_PARALLEL_SIZE, value: "1"}
            - {name: PIPELINE_PARALLEL_SIZE, value: "2"}
        workerSpec: {size: 1}
    """)
    isvc, runtime = objects(bundle)["InferenceService"], objects(bundle)["ServingRuntime"]
    predictor = isvc["spec"]["predictor"]
    assert predictor["workerSpec"]["tensorParallelSize"] == 1
    assert predictor["workerSpec"]["pipelineParallelSize"] == 2
    assert "size" not in predictor["workerSpec"]
    assert "env" not in predictor["model"], "TP/PP env must never reach KServe 0.15+"
    assert gpus(predictor["model"]) == ("1", "1")
    assert gpus(predictor["workerSpec"]["containers"][0]) == ("1", "1")
    assert runtime["spec"]["workerSpec"]["pipelineParallelSize"] == 2
    assert gpus(runtime["spec"]["containers"][0]) == ("1", "1")
    assert gpus(runtime["spec"]["workerSpec"]["containers"][0]) == ("1", "1")
    assert bundle.plans[0].notes[0] == "pipeline parallel size 2 taken from PIPELINE_PARALLEL_SIZE"


def test_seed_example_via_worker_spec_size_only(make_project: ProjectFactory) -> None:
    bundle = render(make_project, """
        model: {env: []}
        workerSpec: {size: 1}
    """)
    plan = bundle.plans[0]
    assert (plan.tensor_parallel, plan.pipeline_parallel, plan.workers) == (1, 2, 1)
    assert plan.notes[0] == "pipeline parallel size 2 taken from workerSpec.size=1 (+1 head)"
    assert objects(bundle)["InferenceService"]["spec"]["predictor"]["workerSpec"]["pipelineParallelSize"] == 2


def test_env_wins_when_both_given_and_disagreeing_and_the_render_says_so(make_project: ProjectFactory) -> None:
    bundle = render(make_project, """
        model:
          env: [{name: PIPELINE_PARALLEL_SIZE, value: "3"}]
        workerSpec: {size: 1}
    """)
    plan = bundle.plans[0]
    assert plan.pipeline_parallel == 3 and plan.workers == 2
    assert plan.notes[0] == ("pipeline parallel size 3 taken from PIPELINE_PARALLEL_SIZE; "
                             "workerSpec.size=1 ignored (it would mean 2 nodes)")
    readme = next(f.text for f in bundle.files if f.path.endswith("README.md"))
    assert "workerSpec.size=1 ignored" in readme


def test_default_pipeline_size_is_two(make_project: ProjectFactory) -> None:
    bundle = render(make_project, """
        model: {env: []}
        workerSpec: null
    """)
    assert bundle.plans[0].pipeline_parallel == 2
    assert bundle.plans[0].notes[0] == ("pipeline parallel size 2 by default "
                                        "(set PIPELINE_PARALLEL_SIZE or workerSpec.size)")


@pytest.mark.parametrize(("tp", "pp"), [(1, 1), (2, 2), (4, 2), (8, 3)])
def test_every_pod_gets_tp_gpus_and_there_are_pp_pods(make_project: ProjectFactory, tp: int, pp: int) -> None:
    bundle = render(make_project, f"""
        model:
          env:
            - {{name: TENSOR_PARALLEL_SIZE, value: "{tp}"}}
            - {{name: PIPELINE_PARALLEL_SIZE, value: "{pp}"}}
    """)
    predictor = objects(bundle)["InferenceService"]["spec"]["predictor"]
    assert gpus(predictor["model"]) == (str(tp), str(tp))
    assert gpus(predictor["workerSpec"]["containers"][0]) == (str(tp), str(tp))
    assert bundle.plans[0].workers == pp - 1
    assert bundle.plans[0].total_gpus == tp * pp


def test_other_env_is_kept_and_passed_to_the_server(make_project: ProjectFactory) -> None:
    bundle = render(make_project, """
        model:
          env:
            - {name: VLLM_LOGGING_LEVEL, value: DEBUG}
            - {name: TENSOR_PARALLEL_SIZE, value: "2"}
    """)
    model = objects(bundle)["InferenceService"]["spec"]["predictor"]["model"]
    assert model["env"] == [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]
