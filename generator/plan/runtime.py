"""Plan stage, runtime part: which image runs the head and workers, under which runtime name,
with which server arguments, and the labels and annotations of every object."""

from __future__ import annotations

import re
from dataclasses import dataclass

from generator.names import label_problem
from generator.plan.values import Issue, Values
from generator.releases import KServeRelease

VLLM_ARGS = {"maxModelLen": "--max-model-len", "gpuMemoryUtilization": "--gpu-memory-utilization",
             "maxNumSeqs": "--max-num-seqs"}
MANAGED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by")


@dataclass(frozen=True)
class Runtime:
    """The ServingRuntime the InferenceService runs on, and the vLLM server's arguments."""

    name: str                         # the ServingRuntime the InferenceService names
    create: bool                      # the bundle holds it (else a cluster runtime of that name)
    flavor: str                       # "llmpack" (vllm-runtime image) or "kserve" (upstream image)
    image: str
    server_args: tuple[str, ...]      # vllm.* settings, then model.args


def runtime(values: Values, kserve: KServeRelease) -> tuple[Runtime, list[str], list[Issue]]:
    """The runtime, the notes about it, and what is wrong."""
    flavor = values.runtime_flavor
    image = values.runtime_image or (kserve.llmpack_image if flavor == "llmpack" else kserve.image)
    notes = [] if "@sha256:" in image else [f"image {image} is pinned by tag; pin it by digest "
                                            "(IMAGE@sha256:...) for reproducible pods"]
    name, issues = _name(values)
    args, arg_issues = server_args(values)
    return Runtime(name, values.runtime_create, flavor, image, args), notes, issues + arg_issues


def _name(values: Values) -> tuple[str, list[Issue]]:
    declared = values.runtime_name
    issues: list[Issue] = []
    if not values.runtime_create and not declared:
        issues.append((("runtime", "create"), "runtime.name is required when runtime.create is false: it names "
                       "the cluster's (Cluster)ServingRuntime to use"))
    return str(declared or f"{values.name}-runtime"), issues


def server_args(values: Values) -> tuple[tuple[str, ...], list[Issue]]:
    """vLLM settings from `vllm`, then `model.args`; an argument may come from one place only."""
    args = tuple(f"{flag}={values.vllm[key]}" for key, flag in VLLM_ARGS.items() if key in values.vllm)
    issues: list[Issue] = []
    for index, arg in enumerate(values.model.args):
        flag = arg.split("=", 1)[0].strip()
        owner = next((key for key, known in VLLM_ARGS.items() if flag in (known, known.replace("-", "_"))), None)
        if owner is not None:
            issues.append((("model", "args", index), f"{flag} comes from vllm.{owner}; set it there instead"))
    return args + values.model.args, issues


def labels(values: Values, release: str) -> tuple[dict[str, str], list[Issue]]:
    """llmpack's labels of every object, then the user's."""
    found = dict(zip(MANAGED_LABELS, (values.name, release, "llmpack"), strict=True))
    issues: list[Issue] = []
    for key, value in sorted(values.labels.items()):
        problem = label_problem(key, value)
        if key in found:
            issues.append((("labels", key), f"label {key} is set by llmpack; remove it"))
        elif problem:
            issues.append((("labels", key), problem))
        else:
            found[key] = value
    return found, issues


def known_bugs(kserve: KServeRelease) -> list[str]:
    """The upstream bugs a bundle for this release meets (releases.py), each with the way out."""
    return [f"KServe {kserve.patch} has kserve/kserve#{bug.issue}: {bug.summary}; {bug.way_out}"
            for bug in kserve.known_bugs]


def revision_notes(values: Values) -> list[str]:
    notes = []
    if not re.fullmatch(r"[0-9a-f]{40}", values.model.revision):
        notes.append(f"model.revision {values.model.revision!r} is not a commit sha; a tag can move, a sha cannot")
    if values.download.enabled and values.download.token_secret is None:
        notes.append("download.tokenSecret is unset: the download works only for public models")
    return notes
