"""Stage 7, write: replace rendered/ENV/ as a whole, or not at all.

The new bundle is written to a staging directory outside rendered/ (in the git-ignored
cache, on the same filesystem), then swapped in with one atomic rename (Linux
`renameat2(RENAME_EXCHANGE)`; elsewhere two renames). A render killed at any moment
leaves the previous rendered/ENV/ intact and nothing else in rendered/; what it leaves
in the staging area is removed by the next render. A bundle identical to what is on
disk is not written at all, so a no-op render touches no file.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

TEMP_PREFIX = ".llmpack-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write(out_root: Path, env: str, files: Mapping[str, str], staging_root: Path | None = None) -> bool:
    """Make out_root/env hold exactly `files` (relative path -> text). Returns False if nothing changed.

    `staging_root` is where the new bundle is prepared (default: out_root itself); it must be on
    the same filesystem as out_root, else out_root is used."""
    target = out_root / env
    for area in (out_root, staging_root):   # what killed renders left behind
        if area is not None and area.is_dir():
            remove_stale(area, env)
    if matches(target, files):
        return False
    out_root.mkdir(parents=True, exist_ok=True)
    area = _staging_area(out_root, staging_root)
    staging = area / f"{TEMP_PREFIX}{env}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        folders = {(staging / relative).parent for relative in files}
        for folder in sorted(folders):
            folder.mkdir(parents=True, exist_ok=True)
        for relative, text in sorted(files.items()):
            (staging / relative).write_text(text, encoding="utf-8", newline="\n")
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def _staging_area(out_root: Path, staging_root: Path | None) -> Path:
    if staging_root is None:
        return out_root
    try:
        staging_root.mkdir(parents=True, exist_ok=True)
        if staging_root.stat().st_dev == out_root.stat().st_dev:
            return staging_root
    except OSError:
        pass
    return out_root


def matches(target: Path, files: Mapping[str, str]) -> bool:
    """True if `target` holds exactly these files with exactly this text."""
    if not target.is_dir():
        return False
    present = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    if present != set(files):
        return False
    return all((target / name).read_bytes() == text.encode("utf-8") for name, text in files.items())


def remove_stale(out_root: Path, env: str) -> None:
    """Remove staging directories of renders of `env` that were killed (their process is gone)."""
    for leftover in out_root.glob(f"{TEMP_PREFIX}{env}-*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


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


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        return
    old = staging.with_name(staging.name + "-old")
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def stale_files(out_root: Path, env: str, files: Mapping[str, str]) -> list[tuple[str, str]]:
    """How out_root/env differs from `files`: (reason, path) with reason one of missing, stale (the
    values changed since it was rendered), hand-edited, extra; paths relative to out_root."""
    from generator.bundle import digest_line

    folder = out_root / env
    present = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()} \
        if folder.is_dir() else {}
    found = []
    for path in sorted(set(files) | set(present)):
        shown = f"{out_root.name}/{env}/{path}"
        if path not in present:
            found.append(("missing", shown))
        elif path not in files:
            found.append(("extra", shown))
        else:
            text = present[path].read_text(encoding="utf-8", errors="replace")
            if text != files[path]:
                same = digest_line(text) is not None and digest_line(text) == digest_line(files[path])
                found.append(("hand-edited" if same else "stale", shown))
    return found
