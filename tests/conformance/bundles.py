"""Bundles as users get them: from the llmpack command line, never from its Python internals.

`llmpack render --env ENV --stdout` prints every object of the environment, each preceded by a
`# Source: rendered/ENV/...` comment and separated by `---`. The example environments are the
folders of overlays/ at run time; the releases are generator.releases.RELEASES.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import subprocess
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.crds import GITOPS_CRDS, SchemaSources, default_cache, fetch_all, go_proxies
from generator.releases import RELEASES

REPO = Path(__file__).resolve().parents[2]
# The project whose overlays are rendered (-C): this checkout unless LLMPACK_CONFORMANCE_PROJECT
# names another (to check another tree against the same control plane).
PROJECT = Path(os.environ.get("LLMPACK_CONFORMANCE_PROJECT") or REPO)
LLMPACK = REPO / ".venv" / "bin" / "llmpack"
# The Argo CD and Flux CRDs (and what renders validate against): LLMPACK_CRD_DIR (make sets it to ../shared/crds
# when that is beside the clone), else llmpack's own cache, filled from the pinned sources (gitops_crds()).
CRDS = Path(os.environ.get("LLMPACK_CRD_DIR") or default_cache() / "crds")
TARGETS = ("kserve", "raw")
LOCATED = re.compile(r"(overlays/\S+|--set \S+|-f \S+):?\d* at /\S*: ")

Obj = dict[str, Any]
Key = tuple[str, str, str, tuple[str, ...]]   # env, target, version, --set values


def gitops_crds() -> Path:
    """The folder of the Argo CD and Flux CRDs: CRDS, fetched (sha256 pinned) into llmpack's cache when absent."""
    if not (CRDS / "argocd").is_dir() or not (CRDS / "flux").is_dir():
        sources = SchemaSources((), default_cache(), go_proxies())
        failed = [f"{pinned.name}: {result}" for pinned, result in fetch_all(sources, GITOPS_CRDS)
                  if isinstance(result, Exception)]
        if failed:
            raise RuntimeError("cannot get the Argo CD and Flux CRDs:\n" + "\n".join(failed))
        return sources.fetched
    return CRDS


def environments() -> list[str]:
    return sorted(p.parent.name for p in (PROJECT / "overlays").glob("*/values.yaml"))


def versions() -> list[str]:
    """Every KServe release llmpack pins, as written in values ("0.20")."""
    return list(RELEASES)


@dataclass(frozen=True)
class Document:
    source: str        # rendered/ENV/RELEASE/PHASE/FILE.yaml
    text: str          # the YAML as rendered (what is applied)
    obj: Obj

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.obj["metadata"].get("namespace")
        return str(namespace) if namespace else None

    @property
    def release(self) -> str:
        """The llmpack release folder (rendered/ENV/RELEASE/...), or 'gitops'."""
        return self.source.split("/")[2]


@dataclass(frozen=True)
class Render:
    env: str
    target: str
    version: str                       # as in values: "0.20"
    documents: tuple[Document, ...] = ()
    refusal: str | None = None         # llmpack's error when it refuses the combination
    command: tuple[str, ...] = field(default=())

    def of_kind(self, kind: str) -> list[Document]:
        return [d for d in self.documents if d.kind == kind]

    def find(self, kind: str, name: str) -> Document:
        return next(d for d in self.documents if d.kind == kind and d.name == name)


def render(env: str, target: str, version: str, sets: tuple[str, ...] = ()) -> Render:
    command = (str(LLMPACK), "-C", str(PROJECT), "render", "--env", env, "--stdout",
               "--set", f'kserve.version="{version}"', "--set", f"target={target}",
               *[a for s in sets for a in ("--set", s)])
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LLMPACK_CRD_DIR": str(CRDS)})
    if result.returncode == 1 and result.stderr.startswith("error: "):
        return Render(env, target, version, refusal=result.stderr.strip(), command=command)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    return Render(env, target, version, parse(result.stdout), command=command)


def parse(stream: str) -> tuple[Document, ...]:
    documents = []
    for chunk in re.split(r"^---\n", stream, flags=re.MULTILINE):
        first, _, _ = chunk.partition("\n")
        if not first.startswith("# Source: "):
            raise ValueError(f"a document without its # Source comment: {first!r}")
        documents.append(Document(first.removeprefix("# Source: "), chunk, yaml.safe_load(chunk)))
    return tuple(documents)


def is_located(refusal: str) -> bool:
    """llmpack's refusals name the file (or --set) and the JSON path of the value to change."""
    return bool(LOCATED.search(refusal))


class Renders:
    """Renders once per session, two at a time in background threads. Prefetched renders (start)
    run in the order given; a render a test waits for (get, get_future) jumps the queue."""

    WORKERS = 2

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Key]] = queue.PriorityQueue()
        self._futures: dict[Key, Future[Render]] = {}
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"llmpack-render-{i}", daemon=True)
                         for i in range(self.WORKERS)]
        for thread in self._threads:
            thread.start()

    def start(self, versions: list[str]) -> None:
        for version in versions:
            for env in environments():
                for target in TARGETS:
                    self._submit((env, target, version, ()), priority=1)

    def get_future(self, env: str, target: str, version: str, sets: tuple[str, ...] = ()) -> Future[Render]:
        return self._submit((env, target, version, sets), priority=0)

    def get(self, env: str, target: str, version: str, sets: tuple[str, ...] = ()) -> Render:
        return self.get_future(env, target, version, sets).result()

    def _submit(self, key: Key, priority: int) -> Future[Render]:
        with self._lock:
            future = self._futures.setdefault(key, Future())
            if not future.running() and not future.done():
                self._queue.put((priority, next(self._order), key))   # a second entry may only move it up
        return future

    def _work(self) -> None:
        while not self._closed:
            _, _, key = self._queue.get()
            with self._lock:
                future = self._futures[key]
                if self._closed or future.running() or future.done():
                    continue   # an earlier entry of the same render, or cancelled
                future.set_running_or_notify_cancel()
            try:
                future.set_result(render(*key))
            except BaseException as err:
                future.set_exception(err)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for future in self._futures.values():
                future.cancel()
