"""Content digests of files, remembered by their stat so an unchanged file is not read again.

A remembered digest is used only when the file's device, inode, size, mtime and ctime are all
the same, and only if the file was already older than `SETTLED_NS` when it was hashed: file
times have a coarse granularity (a few milliseconds on Linux), so a file written again within
the same tick as its hashing could keep its times; one hashed when settled cannot (the kernel
sets ctime on every write, and nobody can set it back). The rule is git's answer to its
"racy clean" index entries.

Standard library only: the no-op render (stamp.py) reads these before importing anything else.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

SETTLED_NS = 2_000_000_000
State = tuple[int, int, int, int, int]      # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


def cache_root() -> Path:
    """Where llmpack keeps its caches: LLMPACK_CACHE_DIR, else $XDG_CACHE_HOME/llmpack, else
    ~/.cache/llmpack (crds.default_cache's rule, without importing what crds.py needs to fetch)."""
    explicit = os.environ.get("LLMPACK_CACHE_DIR")
    if explicit:
        return Path(explicit).resolve()
    return (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmpack").resolve()


def state(path: str | Path) -> State | None:
    """What a file's stat says of it (None: there is no such file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def settled(found: State, now_ns: int) -> bool:
    """True if no write can leave the file with these times any more."""
    return now_ns - max(found[3], found[4]) > SETTLED_NS


def digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    import hashlib  # OpenSSL's: loaded only when a file is read (a no-op render may read none)

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Memo:
    """Remembered digests (path -> stat state and digest), kept in one JSON file."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.changed = False
        try:
            self.entries: dict[str, list[object]] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    def digest(self, path: Path) -> str:
        """The digest of `path`, read again unless it is remembered, settled and unchanged. The file is
        an input of what is being made: said to the no-op render's recorder (stamp.py), which does
        not see a file that is not opened."""
        sys.audit("llmpack.input", str(path))
        key = str(path)
        found = state(path)
        entry = self.entries.get(key)
        if found is not None and entry is not None and entry[:5] == list(found) and entry[6]:
            return str(entry[5])
        value = digest(path)
        if found is not None:
            self.entries[key] = [*found, value, settled(found, time.time_ns())]
            self.changed = True
        return value

    def save(self, limit: int = 1000) -> None:
        """Write the memo if it changed (the newest `limit` entries), atomically; a cache that cannot
        be written is only slower."""
        if not self.changed:
            return
        kept = dict(list(self.entries.items())[-limit:])
        write_atomic(self.file, json.dumps(kept, separators=(",", ":")))


def write_atomic(path: Path, text: str) -> None:
    """Replace a cache file in one rename; when that cannot be done, leave it (a cache is optional)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        pass
