"""Where the CustomResourceDefinitions for the schema check come from (part of the check stage).

For each API group a bundle uses (serving.kserve.io, argoproj.io, the Flux groups), the first of:

1. a folder given with `--crd-dir` or LLMPACK_CRD_DIR: either the layout below (`kserve/vX.Y.Z/`,
   `argocd/...`, `flux/...`) or a flat folder, such as the output of `kubectl get crd -o yaml`;
2. the upstream files llmpack pins (`PinnedCrds`: a release's files and their sha256), kept in
   the cache in the same layout, and fetched on first use from the Go module proxy (GOPROXY,
   default proxy.golang.org): the module archive is read with HTTP range requests, so only the
   few CRD files travel; GitHub's raw file server is the fallback for a release the proxy lacks.

Every file is checked against its pinned digest before it is stored or used, and nothing is
stored unless all files of a release are right. Nothing fetched is committed anywhere.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from generator import files
from generator.digests import Memo
from generator.errors import ToolError
from generator.releases import RELEASES, PinnedCrds

ARGOCD = PinnedCrds("Argo CD v3.5.1", "argocd/v3.5.1", "github.com/argoproj/argo-cd/v3", "v3.5.1", "manifests/crds", {
    "application-crd.yaml": "5dde0e229249b6b707beb98674c1deae3949d5c319a6c45b9f5a80c99618e40c",
    "applicationset-crd.yaml": "7d282054f41ca2b71a22bab04a8caf0000e07e53a62432e6ea292dae5ab4f07d",
    "appproject-crd.yaml": "ab225266944322750136f1198d93786e4a79a0e43c8d149abfba44da30a3eac8",
}, ("argoproj.io",))
FLUX_KUSTOMIZE = PinnedCrds(
    "Flux kustomize-controller v1.9.4", "flux/kustomize-controller-v1.9.4", "github.com/fluxcd/kustomize-controller",
    "v1.9.4", "config/crd/bases", {
        "kustomize.toolkit.fluxcd.io_kustomizations.yaml":
            "da23ca0e6b4c80d3d26a91583137491e147ef4ef1e2208aece0d0af4ef851974",
    }, ("kustomize.toolkit.fluxcd.io",))
FLUX_SOURCE = PinnedCrds(
    "Flux source-controller v1.9.1", "flux/source-controller-v1.9.1", "github.com/fluxcd/source-controller", "v1.9.1",
    "config/crd/bases", {
        "source.toolkit.fluxcd.io_gitrepositories.yaml":
            "39a5a46c81539c992abc53f9be3e5434cd70d50a10d169b1e8a450e0df1c9d09",
        "source.toolkit.fluxcd.io_ocirepositories.yaml":
            "2655834d468e46a533410d9e2bc3f4e7cbf9b4c922b95652012acb09bfb2545a",
    }, ("source.toolkit.fluxcd.io",))
GITOPS_CRDS = (ARGOCD, FLUX_KUSTOMIZE, FLUX_SOURCE)
KSERVE_GROUP = "serving.kserve.io"
DEFAULT_GOPROXY = "https://proxy.golang.org"
GITHUB_RAW = "https://raw.githubusercontent.com"
CRD_SUFFIXES = (".yaml", ".yml", ".json")
_REPO = re.compile(r"github\.com/([^/]+)/([^/]+)")


def _quiet(message: str) -> None:
    """The default progress sink: say nothing."""


@dataclass(frozen=True)
class SchemaSources:
    """Where CRDs are looked for (in order), where fetched and converted files are kept, and where
    pinned files are fetched from."""

    crd_dirs: tuple[Path, ...]
    cache: Path
    proxies: tuple[str, ...] = (DEFAULT_GOPROXY,)
    github_url: str = GITHUB_RAW
    progress: Callable[[str], None] = field(default=_quiet, compare=False)

    @property
    def fetched(self) -> Path:
        return self.cache / "crds"


@dataclass(frozen=True)
class CrdFiles:
    """The CRD files for one schema check and, for the render report, where they came from."""

    files: tuple[Path, ...]
    origins: tuple[str, ...]


def default_cache() -> Path:
    """LLMPACK_CACHE_DIR, else $XDG_CACHE_HOME/llmpack, else ~/.cache/llmpack."""
    explicit = files.environ("LLMPACK_CACHE_DIR")
    folder = Path(explicit) if explicit else Path(files.environ("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmpack"
    return files.resolved(folder) or folder.absolute()


def go_proxies() -> tuple[str, ...]:
    """The HTTP entries of GOPROXY (`direct` and `off` are not servers), else proxy.golang.org."""
    entries = [e for e in re.split(r"[,|]", files.environ("GOPROXY")) if e.startswith(("https://", "http://"))]
    return tuple(entries) or (DEFAULT_GOPROXY,)


def kserve_files(sources: SchemaSources, patch: str) -> CrdFiles:
    """The InferenceService/ServingRuntime CRDs of one KServe release."""
    for folder in sources.crd_dirs:
        release = folder / "kserve" / f"v{patch}"
        if release.is_dir():
            return CrdFiles(tuple(_files_below(release)), (f"KServe {patch} CRDs from {release}",))
        if folder.is_dir() and not (folder / "kserve").exists() and not _layout_folders(folder):
            return CrdFiles(tuple(_files_below(folder)), (f"CRDs from {folder} (taken as KServe {patch})",))
    return fetch(sources, RELEASES_BY_PATCH[patch])


def other_files(sources: SchemaSources) -> CrdFiles:
    """CRDs other than KServe's from the first CRD folder holding any (Argo CD, Flux, ...)."""
    for folder in sources.crd_dirs:
        found = sorted(p for p in _files_below(folder) if (folder / "kserve") not in p.parents)
        if found and not (folder / "kserve").exists() and not _layout_folders(folder):
            return CrdFiles((), ())      # a flat folder: kserve_files took all of it
        if found:
            return CrdFiles(tuple(found), (f"Argo CD / Flux CRDs from {folder}",))
    return CrdFiles((), ())


def pinned_for(group: str) -> PinnedCrds | None:
    """The pinned CRDs that define an API group other than KServe's."""
    return next((p for p in GITOPS_CRDS if group in p.groups), None)


def _layout_folders(folder: Path) -> bool:
    return any((folder / name).is_dir() for name in ("argocd", "flux"))


def _files_below(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in CRD_SUFFIXES)


RELEASES_BY_PATCH = {release.patch: release.crds for release in RELEASES.values()}


def fetch(sources: SchemaSources, pinned: PinnedCrds) -> CrdFiles:
    """The pinned files of one release from the cache, fetched and verified first if need be."""
    target = sources.fetched / pinned.folder
    if not _verified(target, pinned, sources.cache):
        failures = []
        for name, getter in _getters(sources, pinned):
            sources.progress(f"fetching {pinned.name} CRDs from {name} ...")
            started = time.monotonic()
            try:
                texts = getter()
            except ToolError as err:
                failures.append(f"{name}: {err}")
                continue
            _store(target, texts, pinned, sources.cache)
            sources.progress(f"fetched {pinned.name} CRDs ({len(texts)} files, sha256 verified) in "
                             f"{time.monotonic() - started:.1f} s into {target}")
            break
        else:
            raise ToolError(f"cannot fetch the {pinned.name} CRDs for the schema check:\n"
                            + "\n".join(f"  - {failure}" for failure in failures)
                            + "\n  Give a folder of CRDs with --crd-dir (e.g. `kubectl get crd -o yaml` of your "
                            "cluster), or render without the schema check with --no-crd-check")
    origin = f"{pinned.name} CRDs from {pinned.module}@{pinned.version} (sha256 pinned)"
    return CrdFiles(tuple(target / name for name in sorted(pinned.files)), (origin,))


def _verified(folder: Path, pinned: PinnedCrds, cache: Path) -> bool:
    """Every pinned file is there with its digest (remembered by its stat, in the memo schemas.py keeps
    of the same files: a render does not read them twice)."""
    memo = Memo(cache / "schemas" / "digests.json")
    try:
        found = all(memo.digest(folder / name) == digest for name, digest in pinned.files.items())
    except OSError:
        return False
    memo.save()
    return found


def _getters(sources: SchemaSources, pinned: PinnedCrds) -> list[tuple[str, Callable[[], dict[str, bytes]]]]:
    from generator.fetch import from_files, from_proxy  # urllib, http and ssl: only when fetching

    getters: list[tuple[str, Callable[[], dict[str, bytes]]]] = [
        (f"{proxy} ({pinned.module}@{pinned.version})", lambda proxy=proxy: from_proxy(proxy, pinned))  # type: ignore[misc]
        for proxy in sources.proxies]
    repo = _REPO.match(pinned.module)
    if repo:
        base = f"{sources.github_url.rstrip('/')}/{repo.group(1)}/{repo.group(2)}/{pinned.version}/{pinned.path}"
        getters.append((base, lambda: from_files(base, pinned)))
    return getters


def _store(target: Path, texts: dict[str, bytes], pinned: PinnedCrds, cache: Path) -> None:
    """Write a release's files under a temporary name, then rename the folder into place (unless
    another process stored them meanwhile)."""
    files.make_folder(target.parent, str(target.parent))
    staging = target.with_name(f".{target.name}-{os.getpid()}")
    try:
        files.remove_tree(staging)
        files.make_folder(staging, str(target))
        for name, body in texts.items():
            files.write_new(staging / name, str(target / name), body)
        if not _verified(target, pinned, cache):
            files.remove_tree(target)
            files.rename(staging, target, str(target))
    finally:
        files.remove_tree(staging)


def fetch_all(sources: SchemaSources, pinned: Sequence[PinnedCrds]) -> list[tuple[PinnedCrds, CrdFiles | ToolError]]:
    """Fetch several releases; each result is its files or why it could not be fetched."""
    results: list[tuple[PinnedCrds, CrdFiles | ToolError]] = []
    for item in pinned:
        try:
            results.append((item, fetch(sources, item)))
        except ToolError as err:
            results.append((item, err))
    return results
