"""Plan stage, storage part: where the model lives (storageUri), the claim, and its download.

Multi-node serving needs one copy of the model that every pod mounts: `pvc://CLAIM/PATH` (a
ReadWriteMany claim, created by the bundle or declared existing) or, from KServe 0.16, an
`oci://` model image. The download Job's name hashes what it fetches, because Jobs are immutable.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from generator import quantity
from generator.names import is_subdomain
from generator.plan.values import Issue, TokenSecret, Values
from generator.releases import KServeRelease

MARKER_FILE = ".llmpack-complete"


@dataclass(frozen=True)
class Storage:
    """Where the model's files are: the storageUri, its claim and path, and the claim to create."""

    uri: str
    claim: str | None                 # None for oci://
    path: str                         # below the claim
    create: bool                      # the bundle creates the claim
    size: str | None                  # canonical quantity
    access_modes: tuple[str, ...]
    storage_class: str | None


@dataclass(frozen=True)
class Download:
    """The download Job of a release (None in the plan when download is off)."""

    job: str                          # the Job name
    image: str
    model_id: str
    revision: str
    target_dir: str                   # where the Job mounts the claim's model folder
    token_secret: TokenSecret | None
    ignore_patterns: tuple[str, ...]
    active_deadline_seconds: int
    backoff_limit: int


def storage(values: Values, kserve: KServeRelease, workers: int) -> tuple[Storage, list[Issue]]:
    claim, path, issues = _uri(values, kserve)
    pvc = values.pvc
    if claim is not None:
        issues += _claim(values, claim, workers)
    size = quantity.canonical(pvc.size) if pvc.size is not None else None
    return Storage(values.model.storage_uri, claim, path, bool(claim) and pvc.create, size, pvc.access_modes,
                   pvc.storage_class), issues


def _uri(values: Values, kserve: KServeRelease) -> tuple[str | None, str, list[Issue]]:
    uri, where = values.model.storage_uri, ("model", "storageUri")
    if uri.startswith("oci://"):
        if not kserve.oci_storage:
            return None, "", [(where, f"KServe {kserve.version} accepts only pvc:// storage for multi-node; oci:// "
                               "needs 0.16 or later")]
        if values.download.enabled:
            return None, "", [(("download", "enabled"), "must be false with an oci:// storageUri: the model comes "
                               "from the image")]
        if values.pvc.create:
            return None, "", [(("pvc", "create"), "must be false with an oci:// storageUri: no claim is used")]
        return None, "", []
    match = re.fullmatch(r"pvc://([^/]+)/(.+)", uri)
    if not match:
        allowed = "pvc://CLAIM/PATH" + (" or oci://IMAGE" if kserve.oci_storage else "")
        return None, "", [(where, f"multi-node serving needs a shared volume: storageUri must be {allowed}; got "
                           f"{uri!r}")]
    claim, path = match.group(1), match.group(2).strip("/")
    issues: list[Issue] = []
    if not is_subdomain(claim):
        issues.append((where, f"claim name {claim!r} is not a valid PersistentVolumeClaim name"))
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or not re.fullmatch(r"[A-Za-z0-9._/-]+", path):
        issues.append((where, f"path {path!r} in storageUri must be a relative path of letters, digits, '.', '_', "
                       "'-' and '/' without '..'"))
    return claim, path, issues


def _claim(values: Values, claim: str, workers: int) -> list[Issue]:
    pvc = values.pvc
    issues: list[Issue] = []
    if pvc.create and pvc.name not in (None, claim):
        issues.append((("pvc", "name"), f"claim {claim!r} of model.storageUri is neither created by this bundle "
                       f"(pvc.name is {pvc.name!r}) nor declared existing (pvc.create: false)"))
    if pvc.create and pvc.size is None:
        issues.append((("pvc",), "size is required when pvc.create is true (e.g. size: 50Gi)"))
    if workers > 0 and "ReadWriteMany" not in pvc.access_modes:
        issues.append((("pvc", "accessModes"), f"claim {claim!r} must offer ReadWriteMany: head and {workers} "
                       f"worker pod(s) mount it from different nodes (got {', '.join(pvc.access_modes)})"))
    return issues


def download(values: Values, name: str, found: Storage, image: str) -> Download | None:
    """The download Job, named by a hash of model, revision, target and image (Jobs are immutable)."""
    if not values.download.enabled:
        return None
    given, model = values.download, values.model
    key = "\0".join((model.id, model.revision, model.storage_uri, image))
    job = f"{name}-download-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return Download(job, image, model.id, model.revision, f"/mnt/pvc/{found.path}", given.token_secret,
                    given.ignore_patterns, given.active_deadline_seconds, given.backoff_limit)
