"""Plan stage, rules: what KServe's admission webhooks and the API server would refuse at apply
time (reference §6), and what cannot work, refused now with the value to change.

Each rule is a pure function: the values (and the release) in, problems out. `RULES` runs in
order; the derivations (parallelism, storage, resources, runtime) report their own problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from generator.plan.values import Issue, Values
from generator.releases import KServeRelease

Rule = Callable[[Values, KServeRelease], Iterator[Issue]]
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SERVER_ARGS = ("--tensor-parallel-size", "--tensor_parallel_size", "--pipeline-parallel-size",
               "--pipeline_parallel_size", "--model_dir", "--model-dir", "--model_name", "--model-name")


def model_format(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    found = values.model.format
    if found.lower() == "triton":
        yield ("model", "format"), ("Triton cannot serve multi-node: the multi-node runtime is vLLM with Ray; use "
                                    "format huggingface")
    elif found != "huggingface":
        yield ("model", "format"), (f"model format {found!r} is not supported: multi-node serving runs KServe's "
                                    "huggingface (vLLM) runtime; use format huggingface")


def server_args_owned_by_llmpack(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    for index, arg in enumerate(values.model.args):
        flag = arg.split("=", 1)[0].strip()
        if flag in SERVER_ARGS:
            yield ("model", "args", index), (f"{flag} is set by llmpack from the values (parallel sizes, model name "
                                             "and directory); remove it")
        if CONTROL.search(arg):
            yield ("model", "args", index), ("control characters (NUL, escape, ...) cannot be passed to a program; "
                                             "remove them")


def env_without_control_characters(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    for var in values.model.env:
        if CONTROL.search(str(var.item.get("value", ""))):
            yield ("model", "env", var.index, "value"), ("control characters (NUL, escape, ...) cannot be passed "
                                                         "in an environment variable; remove them")


def env_the_release_blocks(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    for var in values.model.env:
        if var.name in kserve.blocked_env:
            yield ("model", "env", var.index, "name"), (f"KServe {kserve.version} refuses {var.name} in any container "
                                                        "(\"not allowed for security reasons\"); remove it")


def pinned_images(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    """The schema checks the shape of an image reference; a tag (not latest) or digest must pin it."""
    images = (("runtime", "image"), values.runtime_image), (("download", "image"), values.download.image), \
        (("verify", "image"), values.verify.image)
    for path, image in images:
        if image is not None and (image.endswith(":latest") or not (":" in image.rsplit("/", 1)[-1]
                                                                    or "@sha256:" in image)):
            yield path, "must be a pinned image reference: REPOSITORY:TAG (not latest) or REPOSITORY@sha256:DIGEST"


def one_head(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    for key, count in (("minReplicas", values.min_replicas), ("maxReplicas", values.max_replicas)):
        if count != 1:
            yield ("predictor", key), (f"multi-node serving needs exactly one head pod; got {key} {count} (more "
                                       "heads are left out of the Ray cluster; add nodes with PIPELINE_PARALLEL_SIZE)")


def gitops_sources(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    for tool, key in (("argocd", "repoURL"), ("flux", "url")):
        if values.gitops[tool]["enabled"] and not values.gitops[tool].get(key):
            yield ("gitops", tool), (f"gitops.{tool}.{key} is required when gitops.{tool}.enabled is true: the git "
                                     "repository that holds rendered/")


def raw_target(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    if values.target != "raw":
        return
    if not values.runtime_create:
        yield ("runtime", "create"), ("target raw renders the pods itself and needs llmpack's runtime definition "
                                      "(runtime.create: true)")
    if values.model.storage_uri.startswith("oci://"):
        yield ("model", "storageUri"), ("target raw needs a pvc:// storageUri (OCI model images need KServe's "
                                        "modelcar support)")


def llmpack_image_is_yours(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    if values.runtime_flavor == "llmpack" and values.runtime_image is None:
        yield ("runtime", "flavor"), ("runtime.flavor llmpack runs llmpack's runtime image, which you build from "
                                      "vllm-runtime/ and push to your registry (none is published): set "
                                      "runtime.image to it (REGISTRY/IMAGE@sha256:...), or use runtime.flavor kserve "
                                      "(KServe's published image with llmpack's scripts)")


def args_need_own_runtime(values: Values, kserve: KServeRelease) -> Iterator[Issue]:
    if not values.runtime_create and values.model.args:
        yield ("model", "args"), ("server arguments need the bundle's own runtime (runtime.create: true); a "
                                  "cluster runtime's command would be replaced by them")


RULES: tuple[Rule, ...] = (model_format, server_args_owned_by_llmpack, env_without_control_characters,
                           env_the_release_blocks, pinned_images, one_head, gitops_sources, raw_target,
                           llmpack_image_is_yours, args_need_own_runtime)
