"""Stage 7, write: replace rendered/ENV/ as a whole, or not at all.

The new bundle is written to a staging directory outside rendered/ (in the git-ignored
cache, on the same filesystem), then swapped in with one atomic rename (Linux
`renameat2(RENAME_EXCHANGE)`; elsewhere two renames). A render killed at any moment
leaves the previous rendered/ENV/ intact and nothing else in rendered/; what it leaves
in the staging area is removed by the next render. A bundle identical to what is on
disk is not written at all, so a no-op render touches no file.

A write the system refuses (a full disk, a read-only or immutable folder, a bind mount)
is a located error, the previous bundle intact and no staging left behind; a staging
area on another mount than rendered/ (EXDEV) falls back to staging inside rendered/.
Something in the way (rendered/ or rendered/ENV being a file, rendered/ENV a symbolic link)
is refused, never moved aside. Every read and write goes through files.py.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from pathlib import Path

from generator import files
from generator.errors import FileError, Location

TEMP_PREFIX = ".llmpack-"
MAX_RENDERED_BYTES = 64 * files.MiB    # a rendered file is a few KiB; more is not ours


def write(out_root: Path, env: str, texts: Mapping[str, str], staging_root: Path | None = None) -> bool:
    """Make out_root/env hold exactly `texts` (relative path -> text). Returns False if nothing changed.

    `staging_root` is where the new bundle is prepared (default: out_root itself); it must be on
    the same filesystem as out_root, else out_root is used."""
    target, shown = out_root / env, f"{out_root.name}/{env}"
    _refuse_what_is_in_the_way(out_root, target, shown)
    for area in (out_root, staging_root):   # what killed renders left behind
        if area is not None and files.kind(area) == "folder":
            remove_stale(area, env)
    if matches(target, texts):
        return False
    created = files.make_folder(out_root, out_root.name)
    try:
        _stage_and_swap(out_root, env, texts, staging_root)
    except FileError as err:
        if created:
            files.remove_empty_folder(out_root)
        raise FileError(err.location, f"{err.message}; nothing was written: {shown} is as it was", err.code) from None
    return True


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


def _stage_and_swap(out_root: Path, env: str, texts: Mapping[str, str], staging_root: Path | None) -> None:
    """Write the bundle in the staging area and swap it in; on EXDEV (a bind mount between them), again
    with the staging folder inside out_root, which is always on the same mount."""
    first = _staging_area(out_root, staging_root)
    for area in dict.fromkeys((first, out_root)):
        staging = area / f"{TEMP_PREFIX}{env}-{os.getpid()}"
        try:
            _stage(staging, texts, f"{out_root.name}/{env}")
            _swap_in(staging, out_root / env, f"{out_root.name}/{env}")
            return
        except FileError as err:
            if err.code != errno.EXDEV or area == out_root:
                raise
        finally:
            files.remove_tree(staging)
            files.remove_tree(staging.with_name(staging.name + "-old"))


def _stage(staging: Path, texts: Mapping[str, str], shown: str) -> None:
    files.remove_tree(staging)
    files.make_folder(staging, shown)
    for folder in sorted({(staging / relative).parent for relative in texts}):
        files.make_folder(folder, shown)
    for relative, text in sorted(texts.items()):
        files.write_new(staging / relative, f"{shown}/{relative}", text.encode("utf-8"))


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


def matches(target: Path, texts: Mapping[str, str]) -> bool:
    """True if `target` holds exactly these files with exactly this text."""
    if files.kind(target) != "folder":
        return False
    present = files.entries(target)
    if set(present) != set(texts) or any(found != "file" for found in present.values()):
        return False
    try:
        return all(files.read_bytes(target / name, name, limit=MAX_RENDERED_BYTES) == text.encode("utf-8")
                   for name, text in texts.items())
    except FileError:
        return False


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
