"""What each supported KServe release accepts and does (shared/reference/kserve-multinode.md §2-5).

The plan stage reads this table; nothing else in llmpack knows release numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from generator import __version__

LLMPACK_IMAGE_REPOSITORY = "ghcr.io/llmpack/vllm-runtime"
KNOWN_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu", "habana.ai/gaudi")


@dataclass(frozen=True)
class PinnedCrds:
    """The CRD files of one upstream release, each pinned by its sha256 (crds.py fetches them)."""

    name: str                    # for people: "KServe 0.20.0"
    folder: str                  # where they live in a CRD folder and in the cache: "kserve/v0.20.0"
    module: str                  # the Go module that holds them: "github.com/kserve/kserve"
    version: str                 # its tag: "v0.20.0"
    path: str                    # their folder inside the module: "config/crd/full"
    files: Mapping[str, str]     # file name -> sha256
    groups: tuple[str, ...] = ("serving.kserve.io",)


def _kserve_crds(patch: str, isvc: str, runtimes: str, cluster_runtimes: str) -> PinnedCrds:
    return PinnedCrds(f"KServe {patch}", f"kserve/v{patch}", "github.com/kserve/kserve", f"v{patch}",
                      "config/crd/full", {"serving.kserve.io_inferenceservices.yaml": isvc,
                                          "serving.kserve.io_servingruntimes.yaml": runtimes,
                                          "serving.kserve.io_clusterservingruntimes.yaml": cluster_runtimes})


_RUNTIMES_015 = ("361eb7b56c3335e114cec9edc22ca1b40029cf0d487dad5a366baccaf3c66cd6",
                 "2f81f42bcc4949664e1d983712a9f16d60f8befe45a1993a934d4b952ad7f2b3")
_RUNTIMES_016 = ("46d97ee5c3dc4f43671ca3a70002367880df3ad6e9cd7cda6903a394060348d2",
                 "a86c160f1dd89c8b6d3d245c148537ed31a2b03c5c6fa5aa85b393ee4b6ff07a")
_RUNTIMES_017 = ("380a3e1e1444cef9b8b88819596692728868205a2147dc66423be469a4a7bbb1",
                 "c6f6bbb1b4b11afd1e38bd6d7255a8795b86efa2b7d14946ccff9d23592e6846")
_ISVC_017 = "b6c30a83b771f791e5de3a30d46ddd2f44e3caeffdc8c132e7c8c145ab209dae"


@dataclass(frozen=True)
class KnownBug:
    """An upstream bug of a release that a bundle would meet: the render warns with the way out."""

    issue: int                # kserve/kserve issue number
    summary: str
    way_out: str


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
    crds: PinnedCrds
    known_bugs: tuple[KnownBug, ...] = ()

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
             min_pipeline=2, oci_storage=False, node_count_env="PIPELINE_PARALLEL_SIZE", crds=_kserve_crds(
                 "0.15.0", "7ffb8619cb1d815dd40e21d5705502071aa0aa083e270db0d0b49ab31e7e058e", *_RUNTIMES_015)),
    _release("0.15", "0.15.2", deployment_mode="RawDeployment", oci_storage=False, crds=_kserve_crds(
        "0.15.2", "43bcb3aef9c6308135ef122f48800230058b710eae98c26ff03da29940525e4e", *_RUNTIMES_015)),
    _release("0.16", "0.16.0", crds=_kserve_crds(
        "0.16.0", "7b57068f8bb0baa394c14bef83421a53a7be8e13335c31a4e55e32d9f549adb0", *_RUNTIMES_016)),
    _release("0.17", "0.17.0", isvc_name_env=True, crds=_kserve_crds("0.17.0", _ISVC_017, *_RUNTIMES_017)),
    # The Go module proxy refuses v0.18.x (403): its CRDs come from --crd-dir or GitHub.
    _release("0.18", "0.18.1", isvc_name_env=True, worker_gets_parallel_env=True,
             crds=_kserve_crds("0.18.1", _ISVC_017, *_RUNTIMES_017)),
    _release("0.19", "0.19.0", isvc_name_env=True, worker_gets_parallel_env=True,
             crds=_kserve_crds("0.19.0", _ISVC_017, *_RUNTIMES_017)),
    _release("0.20", "0.20.0", isvc_name_env=True, worker_gets_parallel_env=True, crds=_kserve_crds(
        "0.20.0", "57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff", *_RUNTIMES_017), known_bugs=(
        KnownBug(6113, "the controller deletes the worker Deployment and the head/worker Services on every "
                 "reconcile, so the Ray cluster never forms", "use KServe 0.19 (kserve.version: \"0.19\")"),)),
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
