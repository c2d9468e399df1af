"""The capacity checks at render time: layouts vLLM would refuse or run out of memory on are
rejected at the value to change; `llmpack plan` prints the figures and the layouts that fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator import capacity
from generator.errors import ValuesError
from generator.pipeline import build
from generator.plan import sizing
from generator.project import Project
from helpers import REPO, ProjectFactory

V = "overlays/test/values.yaml"
LLAMA_8B = "meta-llama/Meta-Llama-3-8B-Instruct"
SEVENTY_B = ("id: meta-llama/Meta-Llama-3-70B-Instruct, revision: 7129260dd854a80eb10ace5f61c20324b472b31c, "
             "storageUri: pvc://llama-3-70b/hf/70b")


def problems(make_project: ProjectFactory, values: str) -> list[str]:
    with pytest.raises(ValuesError) as caught:
        build(make_project(values), "test")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_example_environments_fit(env: str) -> None:
    for plan in build(Project.at(REPO), env).plans:
        assert plan.sizing is not None and plan.sizing.report.ok


def test_tensor_parallel_size_must_divide_the_heads(make_project: ProjectFactory) -> None:
    assert problems(make_project, 'model:\n  env:\n    - {name: TENSOR_PARALLEL_SIZE, value: "3"}\n') == [
        f"{V}:3 at /model/env/0/value: tensor parallel size 3 does not divide the 32 attention heads ({LLAMA_8B} on "
        "A10G, TP 3 x PP 2; `llmpack plan` lists layouts that fit)",
        f"{V}:3 at /model/env/0/value: tensor parallel size 3 does not divide the 8 KV heads (vLLM needs KV heads % "
        f"TP == 0 when TP <= KV heads) ({LLAMA_8B} on A10G, TP 3 x PP 2; `llmpack plan` lists layouts that fit)"]


def test_more_stages_than_layers(make_project: ProjectFactory) -> None:
    assert problems(make_project, 'model:\n  env:\n    - {name: PIPELINE_PARALLEL_SIZE, value: "40"}\n') == [
        f"{V}:3 at /model/env/0/value: pipeline parallel size 40 is more than the 32 layers; every stage needs at "
        f"least one ({LLAMA_8B} on A10G, TP 1 x PP 40; `llmpack plan` lists layouts that fit)"]


def test_weights_that_do_not_fit(make_project: ProjectFactory) -> None:
    assert problems(make_project, f"model: {{{SEVENTY_B}}}\npvc: {{size: 300Gi}}\ngpu: {{type: A10G}}\n") == [
        f"{V}:3 at /gpu/type: weights need 65.7 GiB per GPU (stage 2 of 2), more than the 17.7 GiB available per "
        "A10G (0.9 x 22.5 GiB minus 2.6 GiB reserved) (meta-llama/Meta-Llama-3-70B-Instruct on A10G, TP 1 x PP 2; "
        "`llmpack plan` lists layouts that fit)"]


def test_kv_cache_shorter_than_one_sequence(make_project: ProjectFactory) -> None:
    found = problems(make_project, "vllm: {maxModelLen: 1000000}\n")
    assert found == [f"{V}:1 at /vllm/maxModelLen: the KV cache holds 179,760 tokens, less than one sequence of "
                     f"max_model_len 1,000,000 ({LLAMA_8B} on A10G, TP 1 x PP 2; `llmpack plan` lists layouts that "
                     "fit)"]


def test_warnings_become_render_notes(make_project: ProjectFactory) -> None:
    values = ('model:\n  env:\n    - {name: TENSOR_PARALLEL_SIZE, value: "4"}\n'
              "gpu: {type: H100}\nshm: {sizeLimit: 1Gi}\nvllm: {maxNumSeqs: 4096}\n")
    notes = build(make_project(values), "test").plans[0].notes
    assert [n for n in notes if n.startswith("capacity:")] == [
        "capacity: the KV cache holds 4,362,512 tokens: 532 sequences of 8,192 tokens, fewer than max_num_seqs 4096",
        "capacity: /dev/shm of 1.0 GiB is below 4.0 GiB for 4 GPU(s) per pod (1 GiB per GPU, at least 2 GiB)"]


def test_inline_architecture_and_config_json_next_to_the_values(make_project: ProjectFactory) -> None:
    inline = ("model:\n  architecture: {hiddenSize: 4096, layers: 32, attentionHeads: 32, kvHeads: 8, "
              "intermediateSize: 14336, vocabSize: 128256, dtype: bfloat16}\n")
    assert build(make_project(inline), "test").plans[0].sizing.parameters == 8_030_261_248  # type: ignore[union-attr]
    project = make_project("model: {architecture: configs/my-model.json}\n")
    config = project.root / "overlays" / "test" / "configs" / "my-model.json"
    config.parent.mkdir()
    config.write_text((REPO / "charts/kserve-multinode/models/llama-3-8b.json").read_text())
    assert build(project, "test").plans[0].sizing.parameters == 8_030_261_248  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "message"), [
    ("llama-9", "llama-9 is not the architecture of meta-llama/Meta-Llama-3-8B-Instruct, which is llama-3-8b"),
    ("./nowhere.json", "no such model config: "),
    ("{hiddenSize: 1, layers: 1, attentionHeads: 1, intermediateSize: 1, vocabSize: 1, dtype: int3}",
     "must be one of"),
])
def test_bad_architectures_are_located(make_project: ProjectFactory, value: str, message: str) -> None:
    found = problems(make_project, f"model:\n  architecture: {value}\n")
    assert len(found) == 1 and found[0].startswith(f"{V}:2 at /model/architecture") and message in found[0]


def test_without_a_gpu_type_the_render_says_capacity_was_not_checked(make_project: ProjectFactory) -> None:
    plan = build(make_project("gpu: {type: null}\n"), "test").plans[0]
    assert plan.sizing is None
    assert "capacity not checked: set gpu.type (or gpu.memory)" in plan.notes


def test_custom_gpu_memory(make_project: ProjectFactory) -> None:
    plan = build(make_project("gpu: {type: null, memory: 48Gi}\n"), "test").plans[0]
    assert plan.sizing is not None and plan.sizing.gpu.memory_bytes == 48 * 1024**3


def test_vllm_settings_reach_the_server_and_are_not_set_twice(make_project: ProjectFactory) -> None:
    bundle = build(make_project("vllm: {maxModelLen: 4096}\nmodel: {args: [--enable-prefix-caching]}\n"), "test")
    runtime = next(f.obj for f in bundle.files if f.obj and f.obj["kind"] == "ServingRuntime")
    assert runtime["spec"]["containers"][0]["args"] == [
        "--max-model-len=4096", "--gpu-memory-utilization=0.9", "--max-num-seqs=16", "--enable-prefix-caching"]
    assert problems(make_project, "model: {args: [--max-num-seqs=8]}\n") == [
        f"{V}:1 at /model/args/0: --max-num-seqs comes from vllm.maxNumSeqs; set it there instead"]


def test_plan_command_prints_the_figures_and_the_smallest_layouts() -> None:
    done = subprocess.run([sys.executable, "-m", "generator", "plan", "--env", "prod", "--release", "llama3-70b"],
                          capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "llama3-70b: meta-llama/Meta-Llama-3-70B-Instruct, TP 4 x PP 2 = 8 GPUs"
    assert lines[1] == "  parameters                      70.55 B (141.1 GB in bfloat16)"
    assert "  weights per GPU                 16.4 GiB" in lines
    assert "  KV cache per token per GPU      40.0 KiB" in lines
    assert "  verdict                         fits" in lines
    assert lines.index("  smallest layouts on H100 (TP 1-8 GPUs per pod, PP 1-8 pods):") < lines.index(
        "  smallest layout on other GPUs:")
    assert lines[lines.index("  smallest layouts on H100 (TP 1-8 GPUs per pod, PP 1-8 pods):") + 1].startswith(
        "    TP1 x PP1 (1 GPU): weights need 131.4 GiB per GPU")
    assert any(line.startswith("    A10G       TP8 x PP1 (8 GPUs): fits") for line in lines)


def test_plan_shows_a_layout_that_does_not_fit_instead_of_failing(make_project: ProjectFactory) -> None:
    project = make_project(f"model: {{{SEVENTY_B}}}\npvc: {{size: 300Gi}}\n")
    done = subprocess.run([sys.executable, "-m", "generator", "-C", str(project.root), "plan", "--env", "test"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "  verdict                         error: weights need 65.7 GiB per GPU" in done.stdout


def test_shipped_model_configs_match_the_published_architectures() -> None:
    small = json.loads((REPO / "charts/kserve-multinode/models/llama-3-8b.json").read_text())
    large = json.loads((REPO / "charts/kserve-multinode/models/llama-3-70b.json").read_text())
    assert (small["hidden_size"], small["num_hidden_layers"], small["num_key_value_heads"]) == (4096, 32, 8)
    assert (large["hidden_size"], large["num_hidden_layers"], large["num_attention_heads"]) == (8192, 80, 64)
    assert Path(REPO / "charts/kserve-multinode/models").is_dir()


# The plan stage's functions, called directly: which architecture a release gets, the node it lands on.
CHART = REPO / "charts/kserve-multinode"


def lookup(value: object, model_id: object) -> sizing.ModelArchitecture:
    return sizing.lookup(value, model_id, None, REPO, CHART)


@pytest.mark.parametrize("model_id", ["Qwen/Qwen2.5-72B-Instruct", "qwen/qwen2.5-72b-instruct",
                                      "hf://Qwen/Qwen2.5-72B-Instruct"])
def test_without_model_architecture_the_model_id_names_the_shipped_config(model_id: str) -> None:
    found = lookup(None, model_id)
    assert found.known and found.error is None and found.warning is None
    assert found.architecture is not None and round(capacity.parameter_count(found.architecture) / 1e9, 2) == 72.71
    assert found.source == f"model.id {model_id} (models/index.json: qwen2.5-72b)"


def test_an_unknown_model_is_not_checked_and_says_so() -> None:
    found = lookup(None, "example-org/fine-tuned-7b")
    assert not found.known and found.architecture is None and found.error is None
    assert found.warning == ("unknown model: capacity not checked (example-org/fine-tuned-7b is not in the chart's "
                             "models/index.json; set model.architecture)")
    assert lookup(None, None).warning is not None


def test_model_architecture_wins_unless_it_names_another_shipped_model() -> None:
    assert lookup("llama-3-70b", "meta-llama/Llama-3.3-70B-Instruct").known       # same numbers, one config
    assert lookup("mixtral-8x7b", "example-org/my-mixtral").known                   # not in the index: trusted
    inline = {"hiddenSize": 4096, "layers": 32, "attentionHeads": 32, "intermediateSize": 14336, "vocabSize": 128256,
              "dtype": "bfloat16"}
    assert lookup(inline, "Qwen/Qwen2.5-72B-Instruct").source == "model.architecture (inline)"
    wrong = lookup("llama-3-8b", "Qwen/Qwen2.5-72B-Instruct")                       # issue #14's inherited default
    assert not wrong.known and wrong.error == ("llama-3-8b is not the architecture of Qwen/Qwen2.5-72B-Instruct, "
                                               "which is qwen2.5-72b (models/index.json); set qwen2.5-72b or remove "
                                               "model.architecture")


def test_the_index_is_not_a_model() -> None:
    assert lookup("index", None).error == "no such model config: index (the index of the shipped models)"


def test_a_custom_gpu_size_keeps_the_node_shapes_of_its_type() -> None:
    assert sizing.gpu_type({"type": "L4", "memory": "22Gi"}) == capacity.GpuType("L4", 22, 22528, (1, 2, 4, 8))
    assert sizing.gpu_type({"memory": "48Gi"}) == capacity.GpuType("custom GPU", 48, 49152, (8,))


def test_node_shape_values() -> None:
    gpu = capacity.GPU_TYPES["H100"]
    assert sizing.gpus_per_node({"type": "H100"}) is None
    assert sizing.node_shape({"perNode": 4, "node": {"cpu": "95500m", "memory": "1000Gi"}}, gpu) == \
        capacity.NodeShape(4, 95_500, 1000 * 1024**3, declared=True)
    values = {"type": "H100", "node": {"cpu": "190", "memory": "1900Gi"}}
    assert [p.code for p in sizing.node_problems(values, gpu, {"requests": {"cpu": "192", "memory": "1800Gi"}})] == [
        "node-cpu"]
    assert [p.code for p in sizing.node_problems(values, gpu, {"limits": {"cpu": "8", "memory": "2000Gi"}})] == [
        "node-memory"]                                      # no request: Kubernetes requests the limit
    assert sizing.node_problems({"type": "H100"}, gpu, {"requests": {"cpu": "1000"}}) == []


def test_tp_16_on_h100_lists_the_layouts_that_fit_and_never_says_fits() -> None:
    qwen = lookup(None, "Qwen/Qwen2.5-72B-Instruct").architecture
    assert qwen is not None
    fit = sizing.check(qwen, capacity.GPU_TYPES["H100"], capacity.ServingSettings(max_num_seqs=128), 16, 1, "64Gi")
    assert [p.message for p in fit.report.errors] == [
        "tensor parallel size 16 needs 16 GPUs in one pod, but one H100 node has at most 8; layouts of 16 GPUs that "
        "fit: TP8 x PP2, TP4 x PP4, TP2 x PP8; smallest layouts that fit: TP2 x PP1 (2 GPUs), TP1 x PP2 (2 GPUs), "
        "TP1 x PP3 (3 GPUs)"]
    assert fit.verdict.startswith("error: tensor parallel size 16") and sizing.ERROR_PATHS["node-gpus"]
    assert sizing.check(qwen, capacity.GPU_TYPES["H100"], capacity.ServingSettings(), 8, 2, "64Gi").verdict == "fits"


def test_layouts_report_searches_up_to_the_declared_node() -> None:
    arch = lookup(None, "meta-llama/Meta-Llama-3-8B-Instruct").architecture
    assert arch is not None
    fit = sizing.check(arch, capacity.GPU_TYPES["A10G"], capacity.ServingSettings(), 1, 1, "12Gi", gpus_per_node=4)
    lines = sizing.layouts_report(fit)
    assert lines[0] == "smallest layouts on A10G (TP 1-4 GPUs per pod, PP 1-8 pods):"
    assert "smallest layout on other GPUs:" in lines


def test_moe_figures_show_the_active_parameters() -> None:
    arch = lookup(None, "mistralai/Mixtral-8x7B-Instruct-v0.1").architecture
    assert arch is not None
    fit = sizing.check(arch, capacity.GPU_TYPES["H100"], capacity.ServingSettings(), 2, 1, "12Gi")
    assert fit.figures()[0] == ("parameters", "46.70 B, 12.88 B active (93.4 GB in bfloat16)")
