"""Each supported KServe release gets the annotations, image and limits of its column
(shared/reference/kserve-multinode.md §2), and KServe's GPU allocation yields PP pods of TP GPUs."""

from __future__ import annotations

import pytest

from generator.errors import ValuesError
from generator.pipeline import build
from generator.releases import RELEASES, gpu_allocation
from helpers import ProjectFactory

COLUMNS = [
    # version, autoscalerClass, deploymentMode, image tag, min PP, oci://
    ("0.15.0", "external", "RawDeployment", "v0.15.0-gpu", 2, False),
    ("0.15", "none", "RawDeployment", "v0.15.2-gpu", 1, False),
    ("0.16", "none", "Standard", "v0.16.0-gpu", 1, True),
    ("0.17", "none", "Standard", "v0.17.0-gpu", 1, True),
    ("0.18", "none", "Standard", "v0.18.1-gpu", 1, True),
    ("0.19", "none", "Standard", "v0.19.0-gpu", 1, True),
    ("0.20", "none", "Standard", "v0.20.0-gpu", 1, True),
]


def test_the_table_covers_every_release_the_schema_accepts() -> None:
    assert [c[0] for c in COLUMNS] == list(RELEASES)


@pytest.mark.parametrize(("version", "autoscaler", "mode", "tag", "min_pp", "oci"), COLUMNS)
def test_release_column(make_project: ProjectFactory, version: str, autoscaler: str, mode: str, tag: str,
                        min_pp: int, oci: bool) -> None:
    bundle = build(make_project(f'kserve: {{version: "{version}"}}'), "test")
    by_kind = {f.obj["kind"]: f.obj for f in bundle.files if f.obj}
    annotations = by_kind["InferenceService"]["metadata"]["annotations"]
    assert annotations == {"serving.kserve.io/autoscalerClass": autoscaler,
                           "serving.kserve.io/deploymentMode": mode}
    ours = f"kserve/huggingfaceserver:{tag}"     # runtime.flavor kserve, the default
    runtime = by_kind["ServingRuntime"]["spec"]
    assert runtime["containers"][0]["image"] == ours
    assert runtime["workerSpec"]["containers"][0]["image"] == ours
    assert by_kind["Job"]["spec"]["template"]["spec"]["containers"][0]["image"] == ours
    upstream = build(make_project(f'kserve: {{version: "{version}"}}\nruntime: {{flavor: kserve}}'), "test")
    images = {c["image"] for f in upstream.files if f.obj and f.obj["kind"] == "ServingRuntime"
              for c in [*f.obj["spec"]["containers"], *f.obj["spec"]["workerSpec"]["containers"]]}
    assert images == {f"kserve/huggingfaceserver:{tag}"}

    single_node = make_project(f'kserve: {{version: "{version}"}}\nmodel: {{env: []}}\nworkerSpec: {{size: 0}}')
    if min_pp == 1:
        assert build(single_node, "test").plans[0].pipeline_parallel == 1
    else:
        with pytest.raises(ValuesError, match=r"KServe 0\.15\.0 needs a pipeline parallel size of at least 2"):
            build(single_node, "test")

    oci_values = (f'kserve: {{version: "{version}"}}\nmodel: {{storageUri: "oci://registry.example/llama:1"}}\n'
                  "download: {enabled: false}\npvc: {create: false}")
    if oci:
        files = build(make_project(oci_values), "test").files
        kinds = {f.obj["kind"] for f in files if f.obj}
        assert kinds == {"ServingRuntime", "InferenceService", "Job"}     # the Job: the smoke test
    else:
        with pytest.raises(ValuesError, match=r"needs 0\.16 or later"):
            build(make_project(oci_values), "test")


@pytest.mark.parametrize(("total", "head", "worker", "expected"), [
    (2, 1, 1, (2, 1, 1)),      # the seed: TP 1 x PP 2
    (8, 4, 4, (2, 4, 4)),      # TP 4 x PP 2
    (4, 2, 2, (2, 2, 2)),
    (6, 2, 2, (3, 2, 2)),
    (4, 4, 4, (1, 4, 0)),      # head holds all: one pod
    (4, 0, 2, (2, 2, 2)),      # head unset: total - W(N-1)
    (4, 2, 0, (3, 2, 1)),      # only head set: W = 1, N = 1 + (total - H)
    (4, 0, 0, (4, 1, 1)),      # neither set: one GPU per pod (the surprising default)
])
def test_kserve_gpu_allocation(total: int, head: int, worker: int, expected: tuple[int, int, int]) -> None:
    assert gpu_allocation(total, head, worker) == expected


def test_kserve_gpu_allocation_rejects_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="InvalidGPUAllocation"):
        gpu_allocation(5, 1, 3)


def test_a_known_upstream_bug_is_a_render_warning_with_the_way_out(make_project: ProjectFactory) -> None:
    notes = build(make_project('kserve: {version: "0.20"}'), "test").plans[0].notes
    assert notes[0] == ("KServe 0.20.0 has kserve/kserve#6113: the controller deletes the worker Deployment and the "
                        "head/worker Services on every reconcile, so the Ray cluster never forms; use KServe 0.19 "
                        '(kserve.version: "0.19")')
    assert not any("kserve/kserve#" in n for n in build(make_project(""), "test").plans[0].notes)


def test_the_examples_and_the_chart_use_a_release_without_known_bugs() -> None:
    from generator.project import Project
    from helpers import REPO

    for env in ("dev", "staging", "prod"):
        for planned in build(Project.at(REPO), env).plans:
            assert not planned.kserve.known_bugs, (env, planned.kserve.patch)
