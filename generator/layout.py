"""The layout of a bundle, as data: the phase folders of a release in apply order, and what
llmpack knows of each kind of object it renders.

`templates/FOLDER/NAME.yaml` renders to `RELEASE/FOLDER/NAME.yaml`; FOLDER must be a phase.
Argo CD applies the objects by sync wave (a kind's wave; a wave is healthy before the next
starts) or as a hook; Flux applies one Kustomization per phase folder, each depending on the
one before. Adding a phase or a kind is a row here and a template.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from generator.errors import TemplateError

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
HOOK, HOOK_DELETE_POLICY = "argocd.argoproj.io/hook", "argocd.argoproj.io/hook-delete-policy"


@dataclass(frozen=True)
class Phase:
    """A phase folder of a release and how Argo CD and Flux apply it."""

    folder: str
    flux_wait: bool          # Flux waits for its objects to be ready before the next phase starts
    flux_timeout: str        # a duration, or the gitops.flux key that holds it
    argocd_hook: str | None = None   # an Argo CD hook (re-created on every sync) instead of sync waves

    def annotations(self, kind: Kind) -> dict[str, str]:
        """What Argo CD reads to order an object of this phase."""
        if self.argocd_hook:
            return {HOOK: self.argocd_hook, HOOK_DELETE_POLICY: "BeforeHookCreation"}
        return {SYNC_WAVE: str(kind.wave)}


@dataclass(frozen=True)
class Kind:
    """What llmpack knows of one kind of object it renders."""

    name: str
    wave: int                # Argo CD sync wave
    dns_label: bool = False  # its name is also a label value or DNS label: at most 63, starting with a letter
    kserve: bool = False     # defined by KServe's CRDs
    pods: tuple[str, ...] = ()   # JSON paths of the pod specs it holds or stands for


PHASES = (
    # storage is applied, not waited for: a WaitForFirstConsumer claim binds only when the download uses it
    Phase("storage", flux_wait=False, flux_timeout="5m"),
    Phase("download", flux_wait=True, flux_timeout="downloadTimeout"),
    Phase("serving", flux_wait=True, flux_timeout="servingTimeout"),
    # the smoke test: after every sync; a failure fails the Argo CD sync and the Flux Kustomization
    Phase("verify", flux_wait=True, flux_timeout="verifyTimeout", argocd_hook="PostSync"),
)
KINDS = {kind.name: kind for kind in (
    Kind("PersistentVolumeClaim", 0),
    Kind("Job", 1, dns_label=True, pods=("/spec/template/spec",)),
    Kind("ServingRuntime", 2, kserve=True, pods=("/spec", "/spec/workerSpec")),
    Kind("ClusterServingRuntime", 2, kserve=True, pods=("/spec", "/spec/workerSpec")),
    Kind("Service", 2, dns_label=True),
    Kind("Deployment", 3, dns_label=True, pods=("/spec/template/spec",)),
    Kind("InferenceService", 3, dns_label=True, kserve=True, pods=("/spec/predictor", "/spec/predictor/workerSpec")),
)}
FOLDERS = tuple(phase.folder for phase in PHASES)


def phase_of(template: str) -> Phase:
    """The phase of `templates/FOLDER/NAME.yaml`; a template anywhere else is a chart error."""
    folder = template.rpartition("/")[0]
    phase = next((p for p in PHASES if p.folder == folder), None)
    if phase is None:
        where = f"folder {folder!r}" if folder else "the top of templates/"
        raise TemplateError(template, None, f"a template in {where} belongs to no phase; put it in one of "
                            f"{', '.join(FOLDERS)} (or add a phase to generator/layout.py)")
    return phase


def kind_of(template: str, obj: dict[str, Any]) -> Kind:
    kind = KINDS.get(str(obj.get("kind")))
    if kind is None:
        raise TemplateError(template, None, f"renders a {obj.get('kind')}, a kind llmpack does not know; add it "
                            "to KINDS in generator/layout.py (its sync wave, name rules and pods)")
    return kind


def rank(folder: str) -> int:
    """The apply order of a phase folder (RELEASE/PHASE or PHASE)."""
    phase = folder.rpartition("/")[2]
    return FOLDERS.index(phase) if phase in FOLDERS else len(FOLDERS)


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, pod spec) for each pod spec an object holds or stands for."""
    kind = KINDS.get(str(obj.get("kind")))
    for path in kind.pods if kind else ():
        node: Any = obj
        for key in path.strip("/").split("/"):
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            yield path, node
