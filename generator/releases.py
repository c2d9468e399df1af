"""What each supported KServe release accepts and does (shared/reference/kserve-multinode.md §2-5).

The plan stage reads this table; nothing else in llmpack knows release numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator import __version__

LLMPACK_IMAGE_REPOSITORY = "ghcr.io/llmpack/vllm-runtime"
KNOWN_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu", "habana.ai/gaudi")


@dataclass(frozen=True)
class KServeRelease:
    version: str              # as written in values: "0.20"
    patch: str                # the release llmpack pins for it: "0.20.0"
    autoscaler_class: str     # serving.kserve.io/autoscalerClass, required on multi-node
    deployment_mode: str      # serving.kserve.io/deploymentMode
    min_pipeline: int
    oci_storage: bool         # oci:// accepted as a multi-node storageUri
    node_count_env: str       # the variable the head reads to count Ray nodes
    worker_gets_parallel_env: bool  # worker-container also receives TP/PP and WORKER_SVC (0.18+)
    isvc_name_env: bool       # head receives INFERENCE_SERVICE_NAME (0.17+)

    @property
    def image(self) -> str:
        """KServe's published huggingfaceserver GPU image for this release (pinned tag)."""
        return f"kserve/huggingfaceserver:v{self.patch}-gpu"

    @property
    def llmpack_image(self) -> str:
        """llmpack's runtime image (vllm-runtime/) built on `image`, as published for this release."""
        return f"{LLMPACK_IMAGE_REPOSITORY}:{__version__}-kserve{self.patch}"

    @property
    def min_tensor(self) -> int:
        return 1


def _release(version: str, patch: str, **kw: object) -> KServeRelease:
    base: dict[str, object] = dict(autoscaler_class="none", deployment_mode="Standard", min_pipeline=1,
                                   oci_storage=True, node_count_env="RAY_NODE_COUNT",
                                   worker_gets_parallel_env=False, isvc_name_env=False)
    base.update(kw)
    return KServeRelease(version, patch, **base)  # type: ignore[arg-type]


RELEASES: dict[str, KServeRelease] = {r.version: r for r in (
    _release("0.15.0", "0.15.0", autoscaler_class="external", deployment_mode="RawDeployment",
             min_pipeline=2, oci_storage=False, node_count_env="PIPELINE_PARALLEL_SIZE"),
    _release("0.15", "0.15.2", deployment_mode="RawDeployment", oci_storage=False),
    _release("0.16", "0.16.0"),
    _release("0.17", "0.17.0", isvc_name_env=True),
    _release("0.18", "0.18.1", isvc_name_env=True, worker_gets_parallel_env=True),
    _release("0.19", "0.19.0", isvc_name_env=True, worker_gets_parallel_env=True),
    _release("0.20", "0.20.0", isvc_name_env=True, worker_gets_parallel_env=True),
)}


def gpu_allocation(total: int, head: int, worker: int) -> tuple[int, int, int]:
    """KServe's GPU allocation (v0.15.1+, Ray backend): (pods, head GPUs, worker GPUs).

    `head` and `worker` are the GPU requests of the two containers (0 = unset).
    Raises ValueError where KServe reports InvalidGPUAllocation.
    """
    if worker > 0:
        pods = -(-total // worker)
        if head == 0:
            head = total - worker * (pods - 1)
        if head >= total:
            pods = 1
        if pods == 1:
            worker, head = 0, total
    elif head > 0:
        worker, pods = 1, 1 + (total - head)
    else:
        pods, head, worker = total, 1, 1
    if total > head + worker * (pods - 1):
        raise ValueError(f"InvalidGPUAllocation: {total} GPUs do not fit {pods} pods "
                         f"of head {head} + workers {worker}")
    return pods, head, worker
