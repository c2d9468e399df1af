"""The bundle describes the model the user named: another model than the chart's example must pin
its own revision and path, its architecture comes from the shipped index (or the user), an unknown
model is not sized, and a pod must fit a node. The issue's example: Qwen2.5-72B-Instruct, TP 8 x PP 2
on H100, with only model.id and the parallelism set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.errors import ValuesError
from generator.pipeline import build, capacity_plans
from helpers import REPO, ProjectFactory

V = "overlays/test/values.yaml"
QWEN = """\
name: qwen-72b
model:
  id: Qwen/Qwen2.5-72B-Instruct
  env:
    - {name: TENSOR_PARALLEL_SIZE, value: "8"}
    - {name: PIPELINE_PARALLEL_SIZE, value: "2"}
gpu:
  type: H100
"""
PINNED = QWEN.replace("  id: Qwen/Qwen2.5-72B-Instruct\n", "  id: Qwen/Qwen2.5-72B-Instruct\n"
                      "  revision: 495f39366efef23836d0cfae4fbe635880d2be31\n"
                      "  storageUri: pvc://qwen-72b/hf/qwen2.5-72b-instruct\n") + "pvc:\n  size: 200Gi\n"


def problems(make_project: ProjectFactory, values: str) -> list[str]:
    with pytest.raises(ValuesError) as caught:
        build(make_project(values), "test")
    return [str(p) for p in caught.value.problems]


def test_another_model_must_pin_its_revision_and_path(make_project: ProjectFactory) -> None:
    assert problems(make_project, QWEN) == [
        f"{V}:3 at /model/id: pin model.revision for Qwen/Qwen2.5-72B-Instruct: a 40-hex commit of its repository "
        "(the chart's revision belongs to meta-llama/Meta-Llama-3-8B-Instruct)",
        f"{V}:3 at /model/id: set model.storageUri for Qwen/Qwen2.5-72B-Instruct: pvc://CLAIM/PATH of its own (the "
        "chart's path holds meta-llama/Meta-Llama-3-8B-Instruct)"]


def test_the_claim_must_hold_the_model(make_project: ProjectFactory) -> None:
    assert problems(make_project, PINNED.replace("  size: 200Gi", "  size: 50Gi")) == [
        f"{V}:12 at /pvc/size: a claim of 50Gi cannot hold Qwen/Qwen2.5-72B-Instruct: its weights alone are "
        "135.4 GiB in bfloat16; set at least 150Gi"]


def test_then_72b_is_planned_from_the_shipped_config(make_project: ProjectFactory) -> None:
    (planned,) = build(make_project(PINNED), "test").plans
    assert planned.sizing is not None
    assert abs(planned.sizing.parameters / 72.7e9 - 1) < 0.01                # Qwen's published 72.7 B
    assert dict(planned.sizing.figures())["parameters"] == "72.71 B (145.4 GB in bfloat16)"


def test_tp_16_on_h100_is_refused_with_the_layouts_that_fit(make_project: ProjectFactory) -> None:
    values = PINNED.replace('value: "8"', 'value: "16"').replace('value: "2"', 'value: "1"')
    assert problems(make_project, values) == [
        f"{V}:7 at /model/env/0/value: tensor parallel size 16 needs 16 GPUs in one pod, but one H100 node has at "
        "most 8; layouts of 16 GPUs that fit: TP8 x PP2, TP4 x PP4, TP2 x PP8; smallest layouts that fit: TP2 x PP1 "
        "(2 GPUs), TP1 x PP2 (2 GPUs), TP1 x PP3 (3 GPUs) (Qwen/Qwen2.5-72B-Instruct on H100, TP 16 x PP 1; "
        "`llmpack plan` lists layouts that fit)"]


UNKNOWN = """\
name: custom
model:
  id: example-org/custom-model
  revision: 0123456789abcdef0123456789abcdef01234567
  storageUri: pvc://custom/hf/custom
  env:
    - {name: TENSOR_PARALLEL_SIZE, value: "TP"}
gpu:
  type: H100
"""


def test_an_unknown_model_renders_unsized_and_says_so(make_project: ProjectFactory) -> None:
    (planned,) = build(make_project(UNKNOWN.replace('"TP"', '"8"')), "test").plans
    assert planned.sizing is None
    assert ("unknown model: capacity not checked (example-org/custom-model is not in the chart's models/index.json; "
            "set model.architecture)") in planned.notes


def test_placement_holds_for_an_unknown_model_too(make_project: ProjectFactory) -> None:
    assert problems(make_project, UNKNOWN.replace('"TP"', '"16"')) == [
        f"{V}:7 at /model/env/0/value: tensor parallel size 16 needs 16 GPUs in one pod, but one H100 node has at "
        "most 8 (set gpu.perNode if yours have more); layouts of 32 GPUs that fit: TP8 x PP4, TP4 x PP8, TP2 x PP16, "
        "TP1 x PP32"]
    per_node = UNKNOWN.replace('"TP"', '"16"') + "  perNode: 16\n"
    assert build(make_project(per_node), "test").plans[0].tensor_parallel == 16


def test_a_pod_must_fit_a_declared_node(make_project: ProjectFactory) -> None:
    values = UNKNOWN.replace('"TP"', '"8"') + "  node: {cpu: \"4\", memory: 512Gi}\n"
    assert problems(make_project, values) == [
        "charts/kserve-multinode/values.yaml:28 at /model/resources/requests/cpu: the pod requests 6 CPUs, more than "
        "the 4 one node can allocate (gpu.node)"]


def test_the_defaults_of_the_seed_cluster_are_named_when_kept(make_project: ProjectFactory) -> None:
    (planned,) = build(make_project(""), "test").plans
    assert any(n.startswith("gpu.type A10G is the chart's default") for n in planned.notes)
    assert any(n.startswith("pvc.storageClassName nfs-client is the chart's default") for n in planned.notes)


def test_plan_answers_what_if_questions_as_json(tmp_path: Path) -> None:
    folder = tmp_path / "overlays" / "what-if"
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(PINNED)
    (tmp_path / "two-gpus.yaml").write_text('model: {env: [{name: TENSOR_PARALLEL_SIZE, value: "2"}, '
                                            '{name: PIPELINE_PARALLEL_SIZE, value: "1"}]}\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "generator", "-C", str(tmp_path), "plan", "--env", "what-if",
                           "-f", str(tmp_path / "two-gpus.yaml"), "--set", "gpu.type=L40S", "--output", "json"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    (release,) = json.loads(done.stdout)["releases"]
    assert release["gpu"] == "L40S" and release["estimated"] is True
    assert release["fits"] is False and "weights need" in release["refused"][0]
    assert release["layouts"][0]["fits"] is False and any(layout["fits"] for layout in release["layouts"])


def test_plan_never_says_fits_for_an_unknown_model(make_project: ProjectFactory) -> None:
    project = make_project(UNKNOWN.replace('"TP"', '"16"'))
    (planned,) = capacity_plans(project, "test", None)
    assert planned.sizing is None and planned.refused and "16 GPUs in one pod" in planned.refused[0]
