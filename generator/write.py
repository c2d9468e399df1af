"""Stage 7, write: replace rendered/ENV/ as a whole, or not at all.

The new bundle is written to a staging directory outside rendered/ (in the git-ignored
cache, on the same filesystem), then swapped in with one atomic rename (Linux
`renameat2(RENAME_EXCHANGE)`; elsewhere two renames). A render killed at any moment
leaves the previous rendered/ENV/ intact and nothing else in rendered/; what it leaves
in the staging area is removed by the next render. A bundle identical to what is on
disk is not written at all, so a no-op render touches no file. Files are written as the
pipeline renders them (`Writer`), so a fleet of releases is never held in memory.

A write the system refuses (a full disk, a read-only or immutable folder, a bind mount)
is a located error, the previous bundle intact and no staging left behind; a staging
area on another mount than rendered/ (EXDEV) falls back to staging inside rendered/.
Something in the way (rendered/ or rendered/ENV being a file, rendered/ENV a symbolic link)
is refused, never moved aside. Every read and write goes through files.py.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from generator import files
from generator.errors import FileError, Location

TEMP_PREFIX = ".llmpack-"
MAX_RENDERED_BYTES = 64 * files.MiB    # a rendered file is a few KiB; more is not ours


def write(out_root: Path, env: str, texts: Mapping[str, str], staging_root: Path | None = None) -> bool:
    """Make out_root/env hold exactly `texts` (relative path -> text). Returns False if nothing changed.

    `staging_root` is where the new bundle is prepared (default: out_root itself); it must be on
    the same filesystem as out_root, else out_root is used."""
    with Writer(out_root, env, staging_root) as writer:
        for relative, text in sorted(texts.items()):
            writer.add(relative, text)
        return writer.finish()


class Writer:
    """out_root/env replaced by the files `add`ed, whole, at `finish`; left as it was on any error
    (leaving the `with` block without `finish`, or a failed write) and when every file is the same.

    Files are compared with what is on disk as they come, and staged from the first one that
    differs (the equal ones before it are copied from disk then), so a fleet is written as it
    renders and never held in memory, and a render that changes nothing writes nothing."""

    def __init__(self, out_root: Path, env: str, staging_root: Path | None = None) -> None:
        self.out_root, self.env, self.staging_root = out_root, env, staging_root
        self.target, self.shown = out_root / env, f"{out_root.name}/{env}"
        _refuse_what_is_in_the_way(out_root, self.target, self.shown)
        for area in (out_root, staging_root):   # what killed renders left behind
            if area is not None and files.kind(area) == "folder":
                remove_stale(area, env)
        self.present = files.entries(self.target) if files.kind(self.target) == "folder" else {}
        self.digests: dict[str, str] = {}       # relative path -> sha256 of every file added
        self.same: list[str] = []               # equal to what is on disk, not staged (yet)
        self.staging: Path | None = None
        self.created_root = False
        self.folders: set[Path] = set()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.staging is not None:     # not swapped in: an error, or no finish
            files.remove_tree(self.staging)
            self.staging = None
            if self.created_root:
                files.remove_empty_folder(self.out_root)

    def add(self, relative: str, text: str) -> None:
        data = text.encode("utf-8")
        self.digests[relative] = hashlib.sha256(data).hexdigest()
        if self.staging is None and self._on_disk(relative, data):
            self.same.append(relative)
            return
        self._guarded(lambda: self._put(relative, data))

    def finish(self) -> bool:
        """Swap the staged bundle in; False (nothing written) if every file was equal to what is on disk."""
        if self.staging is None and set(self.present) == set(self.same):
            return False
        self._guarded(self._swap)
        return True

    def _on_disk(self, relative: str, data: bytes) -> bool:
        if self.present.get(relative) != "file":
            return False
        try:
            return files.read_bytes(self.target / relative, relative, limit=MAX_RENDERED_BYTES) == data
        except FileError:
            return False

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run a write step; a refusal of the system says that nothing was written."""
        try:
            step()
        except FileError as err:
            raise FileError(err.location, f"{err.message}; nothing was written: {self.shown} is as it was",
                            err.code) from None

    def _put(self, relative: str, data: bytes) -> None:
        if self.staging is None:
            self._start()
        assert self.staging is not None
        path = self.staging / relative
        if path.parent not in self.folders:
            files.make_folder(path.parent, self.shown)
            self.folders.add(path.parent)
        files.write_new(path, f"{self.shown}/{relative}", data)

    def _start(self) -> None:
        """Begin staging: the staging folder, with the files found equal so far copied from disk."""
        self.created_root = files.make_folder(self.out_root, self.out_root.name)
        self.staging = _staging_area(self.out_root, self.staging_root) / f"{TEMP_PREFIX}{self.env}-{os.getpid()}"
        files.remove_tree(self.staging)
        files.make_folder(self.staging, self.shown)
        self.folders = {self.staging}
        for relative in self.same:
            self._put(relative, files.read_bytes(self.target / relative, relative, limit=MAX_RENDERED_BYTES))
        self.same = []

    def _swap(self) -> None:
        """Swap the staging folder in; on EXDEV (a bind mount between the staging area and out_root), first
        move the staged files into a staging folder inside out_root, which is always on the same mount."""
        if self.staging is None:     # nothing differed, but files on disk are gone: stage what is equal
            self._start()
        assert self.staging is not None
        try:
            _swap_in(self.staging, self.target, self.shown)
        except FileError as err:
            if err.code != errno.EXDEV or self.staging.parent == self.out_root:
                raise
            beside = self.out_root / self.staging.name
            _copy_tree(self.staging, beside, self.shown)
            files.remove_tree(self.staging)
            self.staging = beside
            _swap_in(self.staging, self.target, self.shown)
        old = self.staging.with_name(self.staging.name + "-old")
        files.remove_tree(self.staging)     # after an exchange: the previous bundle
        files.remove_tree(old)
        self.staging = None


def _refuse_what_is_in_the_way(out_root: Path, target: Path, shown: str) -> None:
    found = files.kind(out_root)
    if found not in ("missing", "folder"):
        raise FileError(Location(out_root.name), f"is a {found}, not a folder: llmpack writes its bundles into "
                        f"{out_root.name}/; move it away and render again")
    if files.is_link(target):
        raise FileError(Location(shown), "is a symbolic link: llmpack replaces it as a whole and neither follows "
                        "nor replaces links; remove the link and render again")
    found = files.kind(target)
    if found not in ("missing", "folder"):
        raise FileError(Location(shown), f"is a {found}, not a folder llmpack wrote; move it away and render again")


def _copy_tree(source: Path, target: Path, shown: str) -> None:
    files.remove_tree(target)
    for folder, _, names in os.walk(source):
        here = target / Path(folder).relative_to(source)
        files.make_folder(here, shown)
        for name in sorted(names):
            files.write_new(here / name, shown, files.read_bytes(Path(folder) / name, shown, limit=MAX_RENDERED_BYTES))


def _staging_area(out_root: Path, staging_root: Path | None) -> Path:
    if staging_root is None:
        return out_root
    try:
        files.make_folder(staging_root, str(staging_root))
    except FileError:
        return out_root
    device = files.device(out_root)
    return staging_root if device is not None and files.device(staging_root) == device else out_root


def _swap_in(staging: Path, target: Path, shown: str) -> None:
    if files.kind(target) == "missing":
        try:
            files.rename(staging, target, shown)
            return
        except FileError as err:    # another render put its bundle there meanwhile: swap with it
            if err.code not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if files.exchange(staging, target, shown):
        return
    old = staging.with_name(staging.name + "-old")
    files.rename(target, old, shown)
    try:
        files.rename(staging, target, shown)
    except FileError:
        files.rename(old, target, shown)
        raise
    files.remove_tree(old)


def remove_stale(out_root: Path, env: str) -> None:
    """Remove staging directories of renders of `env` that were killed (their process is gone)."""
    pattern = re.compile(re.escape(f"{TEMP_PREFIX}{env}-") + r"([0-9]+)(?:-old)?")
    try:
        names = os.listdir(out_root)
    except OSError:
        return
    for name in names:
        found = pattern.fullmatch(name)
        if found and not _alive(int(found.group(1))):
            files.remove_tree(out_root / name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_files(out_root: Path, env: str, texts: Mapping[str, str]) -> list[tuple[str, str]]:
    """How out_root/env differs from `texts`: (reason, path) with reason one of missing, stale (the
    values changed since it was rendered), hand-edited, extra; paths relative to out_root."""
    from generator.bundle import digest_line

    folder = out_root / env
    present = files.entries(folder) if files.kind(folder) == "folder" and not files.is_link(folder) else {}
    found = []
    for path in sorted(set(texts) | set(present)):
        shown = f"{out_root.name}/{env}/{path}"
        if path not in present:
            found.append(("missing", shown))
        elif path not in texts or present[path] != "file":
            found.append(("extra" if path not in texts else "not a file", shown))
        else:
            text = files.read_bytes(folder / path, shown, limit=MAX_RENDERED_BYTES).decode("utf-8", "replace")
            if text != texts[path]:
                same = digest_line(text) is not None and digest_line(text) == digest_line(texts[path])
                found.append(("hand-edited" if same else "stale", shown))
    return found
