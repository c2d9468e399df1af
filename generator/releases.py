"""What each supported KServe release accepts and does (shared/reference/kserve-multinode.md §2-6).

One row per release in `RELEASES`: annotations, minimum sizes, storage schemes, the env the
controller injects into each container, the workers' headless Service, images, the pinned
CRDs and known upstream bugs. Nothing else in llmpack knows release numbers; adding a release
is a row here (and `make schema`, which copies the versions into the values schema).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from generator import __version__

LLMPACK_IMAGE_REPOSITORY = "ghcr.io/llmpack/vllm-runtime"
KNOWN_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu", "habana.ai/gaudi")
TP_ENV, PP_ENV = "TENSOR_PARALLEL_SIZE", "PIPELINE_PARALLEL_SIZE"     # the seed's words, refused by KServe
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
GPU_RESOURCE_TYPES = "serving.kserve.io/gpu-resource-types"
MODEL_DIR = "/mnt/models"
# The variables the controller sets in the head (kserve-container) and worker (worker-container),
# in the order llmpack's raw target writes them.
HEAD_ENV = (PP_ENV, TP_ENV, "RAY_NODE_COUNT", "REQUEST_GPU_COUNT", "MODEL_NAME", "MODEL_DIR")
WORKER_ENV = ("RAY_NODE_COUNT", "REQUEST_GPU_COUNT", "ISVC_NAME", "HEAD_SVC")


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
    """What one supported KServe release accepts and does (a row of RELEASES)."""

    version: str                        # as written in values: "0.20"
    patch: str                          # the release llmpack pins for it: "0.20.0"
    crds: PinnedCrds
    autoscaler_class: str = "none"      # AUTOSCALER_CLASS, required on multi-node
    deployment_mode: str = "Standard"   # DEPLOYMENT_MODE
    min_pipeline: int = 1
    min_pipeline_note: str = ""         # said when a pipeline size is below the minimum
    oci_storage: bool = True            # oci:// accepted as a multi-node storageUri
    head_env: tuple[str, ...] = HEAD_ENV
    worker_env: tuple[str, ...] = WORKER_ENV
    worker_service: bool = False        # a headless NAME-workers Service (and WORKER_SVC) too
    known_bugs: tuple[KnownBug, ...] = field(default=())
    min_tensor: int = 1
    blocked_env: tuple[str, ...] = ()   # env names the webhooks refuse in any container

    @property
    def image(self) -> str:
        """KServe's published huggingfaceserver GPU image for this release (pinned tag)."""
        return f"kserve/huggingfaceserver:v{self.patch}-gpu"

    @property
    def llmpack_image(self) -> str:
        """llmpack's runtime image (vllm-runtime/) built on `image`, as published for this release."""
        return f"{LLMPACK_IMAGE_REPOSITORY}:{__version__}-kserve{self.patch}"

    def annotations(self, custom_gpus: tuple[str, ...]) -> dict[str, str]:
        """The InferenceService annotations multi-node serving needs on this release."""
        found = {DEPLOYMENT_MODE: self.deployment_mode, AUTOSCALER_CLASS: self.autoscaler_class}
        if custom_gpus:
            found[GPU_RESOURCE_TYPES] = json.dumps(list(custom_gpus))
        return found


# 0.15.0 injects neither RAY_NODE_COUNT nor REQUEST_GPU_COUNT, and gives the workers PP (seen by `make conformance`).
_HEAD_0150 = (PP_ENV, TP_ENV, "MODEL_NAME", "MODEL_DIR")
_WORKER_0150 = (PP_ENV, "ISVC_NAME", "HEAD_SVC")
_ISVC_NAME = (*HEAD_ENV, "INFERENCE_SERVICE_NAME")                      # 0.17+
_WORKERS = (*WORKER_ENV, PP_ENV, TP_ENV, "WORKER_SVC")                    # 0.18+
_BLOCKED = ("PYTHONPATH",)                                               # 0.19+: "not allowed for security reasons"
_BUG_6113 = KnownBug(6113, "the controller deletes the worker Deployment and the head/worker Services on every "
                     "reconcile, so the Ray cluster never forms", "use KServe 0.19 (kserve.version: \"0.19\")")

RELEASES: dict[str, KServeRelease] = {r.version: r for r in (
    KServeRelease("0.15.0", "0.15.0", _kserve_crds(
        "0.15.0", "7ffb8619cb1d815dd40e21d5705502071aa0aa083e270db0d0b49ab31e7e058e", *_RUNTIMES_015),
        autoscaler_class="external", deployment_mode="RawDeployment", min_pipeline=2,
        min_pipeline_note=" (0.15.1 and later accept 1)", oci_storage=False, head_env=_HEAD_0150,
        worker_env=_WORKER_0150),
    KServeRelease("0.15", "0.15.2", _kserve_crds(
        "0.15.2", "43bcb3aef9c6308135ef122f48800230058b710eae98c26ff03da29940525e4e", *_RUNTIMES_015),
        deployment_mode="RawDeployment", oci_storage=False),
    KServeRelease("0.16", "0.16.0", _kserve_crds(
        "0.16.0", "7b57068f8bb0baa394c14bef83421a53a7be8e13335c31a4e55e32d9f549adb0", *_RUNTIMES_016)),
    KServeRelease("0.17", "0.17.0", _kserve_crds("0.17.0", _ISVC_017, *_RUNTIMES_017), head_env=_ISVC_NAME),
    # The Go module proxy refuses v0.18.x (403): its CRDs come from --crd-dir or GitHub.
    # 0.18.1 cannot be run here; its PYTHONPATH rule is assumed from 0.19 (refusing more is the safe side).
    KServeRelease("0.18", "0.18.1", _kserve_crds("0.18.1", _ISVC_017, *_RUNTIMES_017), head_env=_ISVC_NAME,
                  worker_env=_WORKERS, worker_service=True, blocked_env=_BLOCKED),
    KServeRelease("0.19", "0.19.0", _kserve_crds("0.19.0", _ISVC_017, *_RUNTIMES_017), head_env=_ISVC_NAME,
                  worker_env=_WORKERS, worker_service=True, blocked_env=_BLOCKED),
    KServeRelease("0.20", "0.20.0", _kserve_crds(
        "0.20.0", "57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff", *_RUNTIMES_017),
        head_env=_ISVC_NAME, worker_env=_WORKERS, worker_service=True, known_bugs=(_BUG_6113,),
        blocked_env=_BLOCKED),
)}
# Variables a user may not set: the controller would overwrite them (TP/PP are read, not refused).
CONTROLLER_ENV = frozenset(name for r in RELEASES.values() for name in (*r.head_env, *r.worker_env)) - {TP_ENV, PP_ENV}


def injected_env(names: tuple[str, ...], values: Mapping[str, str]) -> list[dict[str, str]]:
    """The env items the controller sets, in order, from their values for one release."""
    return [{"name": name, "value": values[name]} for name in names]


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
