"""The schema check of a bundle while it renders (check stage): kubeconform over every object.

Objects are grouped per (KServe release when the release has KServe kinds, Kubernetes version);
the GitOps objects join the core ones. As soon as a release is rendered, each of its objects is
looked up in the verdict cache (verdicts.py); the others go to the kubeconform runs of their
schema set (kubeconform.Runs: one, started at the first of them, and a second for a fleet), which
validate them on the other core while the next releases render. `finish` adds the environment's
objects, waits for the runs and reports, per group, what it validated against. Nothing is
reported before `finish`: a problem the other checks find comes first, and a missing tool or CRD
source is said only if there is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from generator import layout
from generator.errors import Finding, LlmpackError

if TYPE_CHECKING:      # the check's modules are imported when it runs: --no-crd-check does without them
    from pathlib import Path
    from types import TracebackType

    from generator import kubeconform, verdicts
    from generator.crds import SchemaSources
    from generator.plan import Plan
    from generator.render import RenderedFile
    from generator.schemas import SchemaSet

Key = tuple[str | None, str]      # (KServe patch or None, Kubernetes version)


class SchemaCheck(Protocol):
    """check.SchemaCheck: where schemas come from and where to look for kubeconform."""

    @property
    def sources(self) -> SchemaSources: ...

    @property
    def tool_roots(self) -> tuple[Path, ...]: ...


@dataclass
class _Group:
    api_groups: set[str] = field(default_factory=set)
    # (display path, the cached verdict or None, the schema set's identity, its run and index in that run)
    slots: list[tuple[str, kubeconform.Verdict | None, tuple[str, int, int]]] = field(default_factory=list)


class Validation:
    """kubeconform over a bundle's objects, fed release by release (`schemas` None: no schema check)."""

    def __init__(self, out_dir: str, schemas: SchemaCheck | None) -> None:
        self.out, self.schemas = out_dir, schemas
        self.groups: dict[Key, _Group] = {}
        self.sets: dict[tuple[Key, frozenset[str]], SchemaSet] = {}
        self.runs: dict[str, kubeconform.Runs] = {}       # by schema set identity
        self.sent: dict[str, list[tuple[str, int, int]]] = {}   # verdict name, run and index of what was sent
        self.stores: dict[str, verdicts.Store] = {}
        self.binary: Path | None = None
        self.failed: LlmpackError | None = None
        self.origin = ""          # where the core schemas come from (schemas.core_origin)

    def __enter__(self) -> Validation:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for run in self.runs.values():
            run.stop()

    def add(self, plan: Plan, files: Sequence[RenderedFile]) -> None:
        """The files of one release, just rendered."""
        objects = [f for f in files if f.key is not None]
        kserve = any(layout.KINDS[f.key[0]].kserve for f in objects if f.key is not None)
        self._add((plan.kserve.patch if kserve else None, plan.kubernetes_version), objects)

    def _add(self, key: Key, objects: Sequence[RenderedFile]) -> None:
        if self.schemas is None or self.failed is not None or not objects:
            return
        group = self.groups.setdefault(key, _Group())
        group.api_groups |= {f.api_version.rpartition("/")[0] for f in objects}
        try:
            found = self._set(key, group.api_groups)
            binary, store = self._binary(), self._store(found)
        except LlmpackError as err:      # said by finish, if nothing else is wrong
            self.failed = err
            return
        for f in objects:
            name = store.key(f.text)
            verdict = store.get(name)
            where = (-1, -1)
            if verdict is None:
                if found.identity not in self.runs:
                    from generator.kubeconform import Runs

                    self.runs[found.identity], self.sent[found.identity] = Runs(binary, found), []
                where = self.runs[found.identity].send(f.text)
                self.sent[found.identity].append((name, *where))
            group.slots.append((f"{self.out}/{f.path}", verdict, (found.identity, *where)))

    def _set(self, key: Key, api_groups: set[str]) -> SchemaSet:
        assert self.schemas is not None
        wanted = (key, frozenset(api_groups))
        if wanted not in self.sets:
            from generator.schemas import core_origin, schema_set

            self.sets[wanted] = schema_set(self.schemas.sources, key[0], key[1], api_groups)
            # Before the bundle's first file is written: finding the package lists sys.path's folders,
            # which the writes could change (the project's own folder when it is on sys.path).
            self.origin = self.origin or core_origin()
        return self.sets[wanted]

    def _binary(self) -> Path:
        assert self.schemas is not None
        if self.binary is None:
            from generator.kubeconform import find

            self.binary = find(*self.schemas.tool_roots, cache=self.schemas.sources.cache,
                                           progress=self.schemas.sources.progress)
        return self.binary

    def _store(self, found: SchemaSet) -> verdicts.Store:
        assert self.schemas is not None
        if found.identity not in self.stores:
            from generator.verdicts import store

            self.stores[found.identity] = store(self._binary(), found, self.schemas.sources.cache)
        return self.stores[found.identity]

    def finish(self, plans: Sequence[Plan], framing: Sequence[RenderedFile]) -> tuple[list[Finding], list[str]]:
        """Add the environment's own files (kustomizations, GitOps objects), wait for kubeconform; the
        findings and, per group, what it validated against."""
        environment = [f for f in framing if f.key is not None]
        if environment and plans:
            self._add((None, plans[0].kubernetes_version), environment)
        if self.failed is not None:
            raise self.failed
        results = {identity: runs.results() for identity, runs in self.runs.items()}
        for identity, sent in self.sent.items():
            for name, which, index in sent:
                self.stores[identity].put(name, results[identity][which][index])
        for store in self.stores.values():
            store.save()
        findings: list[Finding] = []
        summary: list[str] = []
        for key, group in sorted(self.groups.items(), key=lambda item: (item[0][0] or "", item[0][1])):
            for display, verdict, (identity, which, index) in group.slots:
                problems = results[identity][which][index] if verdict is None else verdict
                findings += [Finding(display, path, message) for path, message in problems]
            origins = self._set(key, group.api_groups).origins
            summary.append(f"{len(group.slots)} objects against Kubernetes {key[1]} ({self.origin})"
                           + "".join(f", {origin}" for origin in origins))
        return findings, summary
