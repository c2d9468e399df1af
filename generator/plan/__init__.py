"""Stage 4, plan: turn valid values into the facts the templates need.

This is where the seed's vocabulary (TENSOR_PARALLEL_SIZE, PIPELINE_PARALLEL_SIZE,
workerSpec.size) becomes what the target KServe release accepts, where GPU counts, names and
annotations are derived, and where every rule KServe's admission webhooks would enforce at
apply time is enforced now, with the file and line to fix. Each part is its own module and
returns a frozen value; `plan` only assembles them. Templates read the plan, never the values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from generator.errors import Problem, ValuesError
from generator.merge import Merged
from generator.plan.fit import cluster_defaults, fit, identity
from generator.plan.parallelism import Parallelism, parallelism
from generator.plan.resources import PROBE_PERIOD_SECONDS, Pods, container, gpu_resource, shm
from generator.plan.rules import RULES
from generator.plan.runtime import Runtime, known_bugs, labels, revision_notes, runtime
from generator.plan.sizing import Sizing
from generator.plan.storage import MARKER_FILE, Download, Storage, download, storage
from generator.plan.values import Issue, Values
from generator.plan.verify import Verify, verify
from generator.releases import MODEL_DIR, RELEASES, KServeRelease, gpu_allocation, injected_env


@dataclass(frozen=True)
class Plan:
    """Everything derived for one release: what the templates and the checks read."""

    release: str
    name: str
    namespace: str
    target: str
    kserve: KServeRelease
    kubernetes_version: str
    parallel: Parallelism
    storage: Storage
    download: Download | None
    verify: Verify | None                     # the smoke test Job
    runtime: Runtime
    pods: Pods
    labels: dict[str, str]
    annotations: dict[str, str]               # the InferenceService's
    argocd: bool                              # objects carry Argo CD sync waves
    model_id: str
    revision: str
    notes: tuple[str, ...]
    sizing: Sizing | None
    refused: tuple[str, ...] = ()             # what a render would refuse (only for `llmpack plan`)
    marker_file: str = MARKER_FILE

    @property
    def marker(self) -> str:
        """MODEL@REVISION: what the download writes to the marker file once the files are verified."""
        return f"{self.model_id}@{self.revision}"

    @property
    def tensor_parallel(self) -> int:
        return self.parallel.tensor

    @property
    def pipeline_parallel(self) -> int:
        return self.parallel.pipeline

    @property
    def workers(self) -> int:
        return self.parallel.workers

    @property
    def total_gpus(self) -> int:
        return self.parallel.total

    @property
    def head_service(self) -> str:
        return f"{self.name}-head"

    @property
    def worker_service(self) -> str:
        return f"{self.name}-workers"

    def injected(self, role: str) -> list[dict[str, str]]:
        """The env KServe's controller sets in the head or worker container, for target raw."""
        tp, pp = str(self.tensor_parallel), str(self.pipeline_parallel)
        values = {"TENSOR_PARALLEL_SIZE": tp, "PIPELINE_PARALLEL_SIZE": pp, "RAY_NODE_COUNT": pp,
                  "REQUEST_GPU_COUNT": tp, "MODEL_NAME": self.name, "MODEL_DIR": MODEL_DIR,
                  "INFERENCE_SERVICE_NAME": self.name, "ISVC_NAME": self.name, "HEAD_SVC": self.head_service,
                  "WORKER_SVC": self.worker_service}
        return injected_env(self.kserve.head_env if role == "head" else self.kserve.worker_env, values)


def plan(merged: Merged, release: str, context: str = "", roots: tuple[Path, Path] = (Path("."), Path(".")), *,
         capacity_errors: bool = True) -> Plan:
    """The plan of one release, or `ValuesError` with every rule it breaks. `roots` are the project
    and chart folders (for model configs); `capacity_errors=False` keeps capacity errors as notes."""
    values = Values.of(merged.data)
    kserve = RELEASES[values.kserve_version]
    parallel, issues = parallelism(values, kserve)
    found, more = storage(values, kserve, parallel.workers)
    pods, pod_issues = _pods(values, parallel)
    run, run_notes, run_issues = runtime(values, kserve)
    smoke, smoke_issues = verify(values, parallel, run.image)
    own_labels, label_issues = labels(values, release)
    issues += [*more, *pod_issues, *[i for rule in RULES for i in rule(values, kserve)], *run_issues, *smoke_issues,
               *label_issues, *identity(merged, values, roots[1])]
    sized, fit_issues, fit_notes = (None, [], []) if issues else \
        fit(values, parallel, pods, found, merged.locate(("model", "architecture")), roots)
    refused = () if capacity_errors else tuple(message for _, message in fit_issues)   # `llmpack plan` shows them
    fit_issues = fit_issues if capacity_errors else []
    if issues or fit_issues:
        raise ValuesError(_problems(merged, [*issues, *fit_issues]), context)
    _same_as_kserve(parallel)
    custom_gpus = gpu_resource(values)[1]
    return Plan(release, values.name, values.namespace, values.target, kserve, values.kubernetes_version, parallel,
                found, download(values, values.name, found, values.download.image or run.image), smoke, run, pods,
                own_labels, kserve.annotations(custom_gpus), values.gitops["argocd"]["enabled"], values.model.id,
                values.model.revision,
                (*known_bugs(kserve), *parallel.notes, *fit_notes, *cluster_defaults(merged, values), *run_notes,
                 *revision_notes(values)),
                sized, refused)


def _pods(values: Values, parallel: Parallelism) -> tuple[Pods, list[Issue]]:
    gpu, _, issues = gpu_resource(values)
    head, head_issues = container(values, ("model", "resources"), values.model.resources, parallel.tensor)
    worker_path = ("workerSpec", "resources") if values.worker_resources else ("model", "resources")
    worker, worker_issues = container(values, worker_path, values.worker_resources or values.model.resources,
                                      parallel.tensor)
    size, shm_issues = shm(values, head, worker)
    job, job_issues = container(values, ("download", "resources"), values.download.resources, 0)
    pods = Pods(gpu, head, worker, size, parallel.env,
                math.ceil(values.startup_timeout_seconds / PROBE_PERIOD_SECONDS),
                math.ceil(values.ray_wait_seconds / 10) + 3, values.ray_wait_seconds, values.socket_ifname,
                values.node_selector, values.tolerations, job)
    return pods, [*issues, *head_issues, *worker_issues, *shm_issues, *job_issues]


def _problems(merged: Merged, issues: list[Issue]) -> list[Problem]:
    problems: list[Problem] = []
    for path, message in issues:
        problem = Problem(merged.locate(path), path, message)
        if problem not in problems:
            problems.append(problem)
    return problems


def _same_as_kserve(parallel: Parallelism) -> None:
    """KServe's GPU allocation must give PP pods of TP GPUs from what the bundle sets (both to TP)."""
    pods, head_gpus, worker_gpus = gpu_allocation(parallel.total, parallel.tensor, parallel.tensor)
    if (pods, head_gpus, worker_gpus or parallel.tensor) != (parallel.pipeline, parallel.tensor, parallel.tensor):
        raise AssertionError(f"GPU allocation {pods}x{head_gpus}/{worker_gpus} != PP {parallel.pipeline} x TP "
                             f"{parallel.tensor}")
