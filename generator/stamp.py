"""The no-op render: when nothing a render read has changed since it last wrote or confirmed
rendered/ENV/, and those files are as it left them, say so without rendering (commands.render).

A render records what it reads while it runs (recorder.py: every file it opens for reading,
every folder it lists, every program it starts, what it names as read or looked at), plus every
module it imported (llmpack's code and its libraries' files), the folders whose entries
decide which files are read (CRD folders, kubeconform's candidates), and then keeps, in the
project's `.cache/llmpack/stamps/`, a stamp of them: each file's sha256 (remembered by its stat
in the cache's digests/inputs.json, digests.py's rule) and stat, each folder's entries, each
output file's sha256 and stat, and what the render printed. The stamp is named by the command
line, the current folder, llmpack's version, the interpreter and every LLMPACK_*,
HOME, XDG_CACHE_HOME, PATH, GOPROXY and PYTHONPATH variable.

The next render with the same name compares the stamp with the disk: folders listed again, each
file's stat compared and, unless it is unchanged and was already settled when recorded
(digests.py), its bytes hashed again. Any difference, or a file that changed while the stamp's
render ran, or leftovers of a killed render, and the render runs in full. The derived caches
(converted schemas, verdicts, compiled templates) are not inputs: they follow from the inputs.

Standard library only, so a no-op costs the interpreter's start-up and a few hundred stats.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import generator
from generator.digests import SETTLED_NS, Memo, State, cache_root, digest, state, write_atomic
from generator.recorder import Recorder, unseen

TYPE_CHECKING = False   # typing's, without importing typing on the start-up path (mypy reads it as True)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Recorder", "answer", "find_root", "save", "unseen"]

FORMAT = 1
ENVIRON = ("HOME", "XDG_CACHE_HOME", "PATH", "GOPROXY", "PYTHONPATH")
STAMPS = Path(".cache") / "llmpack" / "stamps"
KEPT = 32
MEMO_ENTRIES = 20_000     # input digests remembered (a fleet's release files, llmpack's modules, CRDs)


def find_root(start: Path) -> Path | None:
    """project.Project.find's rule: the nearest folder, `start` or above, with an overlays/ folder
    (`save` keeps no stamp when the render found its project otherwise)."""
    try:
        here = start.resolve()
    except (OSError, RuntimeError):
        return None
    return next((folder for folder in (here, *here.parents) if (folder / "overlays").is_dir()), None)


def asked(invocation: Mapping[str, Any]) -> str:
    """What the render was asked and everything around it that it could read, as text."""
    environ = {k: v for k, v in os.environ.items() if k.startswith("LLMPACK_") or k in ENVIRON}
    return json.dumps([FORMAT, generator.__version__, sys.executable, sys.version, os.getcwd(), environ, invocation],
                      sort_keys=True, default=str)


def name(text: str) -> str:
    """A stamp's file name: FNV-1a of what it was asked (the stamp holds the text itself, compared in
    full; a hash module would cost the no-op render an OpenSSL load)."""
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def answer(start: Path, invocation: Mapping[str, Any]) -> tuple[list[str], str | None] | None:
    """What the render printed when it last ran (its lines, and the YAML stream of a --stdout render),
    if nothing it depends on changed since; else None."""
    root = find_root(start)
    if root is None:
        return None
    text = asked(invocation)
    path = root / STAMPS / f"{name(text)}.json"
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    check = _Check()
    if stamp.get("format") != FORMAT or stamp.get("asked") != text or not check.holds(stamp):
        return None
    if check.refreshed:
        write_atomic(path, json.dumps(stamp))
    return [str(line) for line in stamp["lines"]], stamp.get("stdout")


class _Check:
    """Compares a stamp with the disk; files that had to be hashed again and are settled now are
    refreshed in the stamp, so the next check only stats them."""

    def __init__(self) -> None:
        self.now = time.time_ns()
        self.refreshed = False

    def holds(self, stamp: dict[str, Any]) -> bool:
        return (all(self.same(p, entry) for p, entry in stamp["files"].items())
                and all(_listing(p) == names for p, names in stamp["listings"].items())
                and all(_kind(p) == found for p, found in stamp["probes"].items())
                and all(self.same_tree(folder, files) for folder, files in stamp["outputs"].items())
                and not any(_leftovers(folder, prefix) for folder, prefix in stamp["clean"].items()))

    def same(self, path: str, entry: list[Any]) -> bool:
        found = state(path)
        if found is None:
            return False
        if list(found) == entry[:5] and entry[6]:
            return True
        if digest(path) != entry[5]:
            return False
        if self.now - max(found[3], found[4]) > SETTLED_NS:
            entry[:] = [*found, entry[5], True]
            self.refreshed = True
        return True

    def same_tree(self, folder: str, files: dict[str, list[Any]]) -> bool:
        return set(_tree(folder)) == set(files) and \
            all(self.same(os.path.join(folder, rel), e) for rel, e in files.items())


def save(recorder: Recorder, root: Path, *, outputs: Mapping[Path, Mapping[str, str]], lines: list[str],
         stdout: str | None = None, excluded: Iterable[Path] = (), clean: Iterable[Path] = ()) -> bool:
    """Keep the stamp of a render that succeeded: what `recorder` saw but what is below `excluded`
    (outputs and derived caches), the imported modules and the written `outputs` (folder -> relative
    path -> sha256 of its bytes), what it printed (`lines`; `stdout`: the YAML stream of a --stdout render, which
    writes no file); `clean`: folders that must hold no leftover of a killed render. No stamp (False)
    when the project was found by another rule than `find_root`, or when an input changed during the
    render or too shortly before it for its stat to tell a later change."""
    if find_root(recorder.start) != root:
        return False
    below = _folders_below(recorder.trees)
    skip = (*(os.path.join(os.path.abspath(p), "") for p in [*excluded, *outputs]), "/proc/", "/dev/", "/sys/")
    seen = {p: found for p, found in {**recorder.seen, **{p: state(p) for p in [*_modules(), *below]}}.items()
            if not os.path.join(p, "").startswith(skip)}
    memo = Memo(cache_root() / "digests" / "inputs.json")    # the inputs' digests, remembered by their stat
    inputs = _inputs(seen, recorder.folders | set(below), recorder.start_ns, memo)
    memo.save(limit=MEMO_ENTRIES)
    written = {str(folder): _outputs(folder, digests, recorder.start_ns) for folder, digests in outputs.items()}
    if inputs is None or None in written.values():
        return False
    files, listings, missing = inputs
    text = asked(recorder.invocation)
    stamp = {"format": FORMAT, "asked": text, "root": str(root), "files": files, "listings": listings,
             "probes": {**{p: _kind(p) for p in recorder.probes if not p.startswith(skip)}, **missing},
             "outputs": written,
             "clean": {str(folder): ".llmpack-" for folder in clean}, "lines": lines, "stdout": stdout}
    write_atomic(root / STAMPS / f"{name(text)}.json", json.dumps(stamp))
    _prune(root / STAMPS)
    return True


def _prune(folder: Path) -> None:
    """Keep the newest KEPT stamps (one per command line and environment that rendered lately)."""
    try:
        found = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in found[:-KEPT]:
            old.unlink()
    except OSError:
        pass


def _inputs(seen: Mapping[str, State | None], folders: set[str], start_ns: int, memo: Memo
            ) -> tuple[dict[str, list[Any]], dict[str, list[str] | None], dict[str, str]] | None:
    """Files with digests, folders with entries, and paths that did not exist; None if one changed
    since it was read or was not settled when the render started."""
    files: dict[str, list[Any]] = {}
    listings: dict[str, list[str] | None] = {}
    missing: dict[str, str] = {}
    for path, before in seen.items():
        if state(path) != before:
            return None
        if before is None:
            missing[path] = "missing"
        elif start_ns - max(before[3], before[4]) <= SETTLED_NS:
            return None
        elif path in folders or os.path.isdir(path):
            listings[path] = _listing(path)
        else:
            files[path] = [*before, memo.digest(Path(path)), True]
    return files, listings, missing


def _outputs(folder: Path, digests: Mapping[str, str], start_ns: int) -> dict[str, list[Any]] | None:
    """The files written (or found equal) by the render, with the sha256 of what it wrote; trusted by
    their stat only if they were already there, unchanged, before the render started (it compared
    their bytes then)."""
    entries: dict[str, list[Any]] = {}
    for relative, sha256 in digests.items():
        found = state(folder / relative)
        if found is None:
            return None
        trusted = start_ns - max(found[3], found[4]) > SETTLED_NS
        entries[relative] = [*found, sha256, trusted]
    return entries


def _modules() -> list[str]:
    """The files of every imported module outside the standard library (llmpack's and its libraries')."""
    stdlib = os.path.join(os.path.dirname(os.__file__), "")
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and (not path.startswith(stdlib) or "-packages" in path):
            found.append(os.path.abspath(path))
    return found


def _folders_below(trees: Iterable[Path]) -> list[str]:
    return [os.path.abspath(top) for tree in trees for top, _, _ in os.walk(tree)]


def _kind(path: Path | str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _listing(folder: Path | str) -> list[str] | None:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return None


def _tree(folder: Path | str, prefix: str = "") -> list[str]:
    """Everything below `folder` but folders, by relative path (an unreadable folder holds nothing)."""
    found: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            found += _tree(entry.path, f"{prefix}{entry.name}/")
        else:
            found.append(prefix + entry.name)
    return found


def _leftovers(folder: Path | str, prefix: str) -> bool:
    return any(entry.startswith(prefix) for entry in _listing(folder) or [])
