"""kubeconform's verdicts, remembered: an object is validated once, not on every render (check stage).

kubeconform validates each object on its own, so its verdict on one object (the problems it finds,
or none) follows from exactly three things: the object's bytes, the schemas it reads, and
kubeconform itself with its arguments. The cache holds, per schema set and binary, the verdict of
each object text it has validated, under the text's sha256:

    CACHE/verdicts/v1-<sha256 of (schema set identity, kubeconform's sha256, its arguments)>.json

The schema set identity names the converted schema folders, which are named by a digest of every
input they are made of (the CRD files' bytes, the installed kubernetes-validate's files, the
converter's version: schemas.py), so a changed byte in any CRD, another kubeconform binary or
another argument is another file, never a stale verdict. Failures are kept too, as the located
findings they gave; only objects without a verdict go to kubeconform, and when every object has
one, kubeconform does not run at all (validation.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from generator import kubeconform
from generator.digests import Memo, write_atomic
from generator.schemas import SchemaSet

FORMAT = "v1"
MAX_ENTRIES = 20_000      # per file; the oldest are dropped first


def store(binary: Path, schemas: SchemaSet, cache: Path) -> Store:
    """The verdicts kubeconform `binary` gave against `schemas`."""
    return Store(cache / "verdicts" / f"{FORMAT}-{key(binary, schemas, cache)}.json")


def key(binary: Path, schemas: SchemaSet, cache: Path) -> str:
    """What a verdict depends on besides the object: the schemas, the binary's bytes, its arguments."""
    memo = Memo(cache / "verdicts" / "binaries.json")
    tool = memo.digest(binary)
    memo.save()
    parts = [schemas.identity, *schemas.locations(), kubeconform.KUBECONFORM_VERSION, tool, *kubeconform.ARGS]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


class Store:
    """The verdicts of one schema set and binary, by object digest, in one JSON file."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.added = False
        try:
            self.entries: dict[str, list[list[str]]] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    @staticmethod
    def key(text: str) -> str:
        """An object text's entry name."""
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def get(self, key: str) -> kubeconform.Verdict | None:
        entry = self.entries.get(key)
        return None if entry is None else tuple((str(path), str(message)) for path, message in entry)

    def put(self, key: str, verdict: kubeconform.Verdict) -> None:
        self.entries[key] = [[path, message] for path, message in verdict]
        self.added = True

    def save(self) -> None:
        if self.added:
            kept = dict(list(self.entries.items())[-MAX_ENTRIES:])
            write_atomic(self.file, json.dumps(kept, separators=(",", ":")))
