"""The boundary with the outside world: every read and write of a project's files and folders,
and every environment variable llmpack reads, go through here.

What comes in is checked once, here: a file must be a regular file (a folder, FIFO, device or
socket is refused before it is opened, and no open can block: O_NONBLOCK); its size is capped
while reading, not by trusting st_size (/proc files say 0, devices never end); text must be
UTF-8. Every OSError (ENOENT, EACCES, EPERM, EROFS, ENOSPC, EXDEV, ELOOP, EIO, ...) becomes a
`FileError` that names the path, what failed and what to do; no other module catches OSError
of a project file. Writes are whole files only (`replace_file`: a temporary file renamed into
place) or folders built aside and renamed in (write.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path

from generator.errors import FileError, Location

MiB = 1024 * 1024
_CHUNK = 64 * 1024
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100

# errno -> (what happened, what to do)
_REASONS: dict[int, tuple[str, str]] = {
    errno.ENOENT: ("it does not exist", "check the path"),
    errno.EACCES: ("permission denied", "check its permissions and those of its folders (ls -l)"),
    errno.EPERM: ("the operation is not permitted", "is it immutable (lsattr) or owned by another user?"),
    errno.EROFS: ("the file system is read-only", "work in a writable checkout"),
    errno.ENOSPC: ("no space left on the device", "free some space and run again"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space and run again"),
    errno.EXDEV: ("it is on another file system (a mount point or bind mount)", "mount its parent folder instead"),
    errno.ELOOP: ("it is a symbolic link loop", "point the link at a real file"),
    errno.EISDIR: ("it is a folder", "give a file"),
    errno.ENOTDIR: ("a part of its path is not a folder", "check the path"),
    errno.EBUSY: ("it is busy or a mount point", "unmount it, or mount its parent folder instead"),
    errno.ENAMETOOLONG: ("its name is too long", "use a shorter path"),
    errno.EIO: ("input/output error", "give a regular file"),
    errno.ENXIO: ("there is no such device (a socket or a device)", "give a regular file"),
    errno.ENOTEMPTY: ("the folder is not empty", "remove what is in the way"),
    errno.EEXIST: ("something is in the way", "remove what is in the way"),
}


def failure(err: OSError, shown: str, doing: str) -> FileError:
    """An OSError as a located error: `PATH: cannot DOING: REASON (ECODE); WHAT TO DO`."""
    code = err.errno if err.errno is not None else 0
    reason, hint = _REASONS.get(code, (err.strerror or str(err), "check the path"))
    name = errno.errorcode.get(code, "")
    return FileError(Location(shown), f"cannot {doing}: {reason}{f' ({name})' if name else ''}; {hint}", code)


def kind(path: Path) -> str:
    """What is at `path`, following symbolic links: "missing", "file", "folder", "link loop",
    "FIFO", "character device", "block device", "socket", or "unreadable" (an OSError)."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        return {errno.ENOENT: "missing", errno.ENOTDIR: "missing", errno.ELOOP: "link loop"}.get(
            err.errno or 0, "unreadable")
    return _type_name(mode)


def is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:
        return False


def _type_name(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def not_a_file(shown: str, found: str, what: str) -> FileError:
    return FileError(Location(shown), f"is a {found}, not a regular file; a {what} must be a regular file")


def _limit_text(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit // 1024} KiB"


def read_bytes(path: Path, shown: str, *, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is a FileError."""
    found = kind(path)
    if found not in ("file", "unreadable", "link loop", "missing"):
        raise not_a_file(shown, found, what)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise failure(err, shown, f"read the {what}") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):      # replaced between the check and the open
            raise not_a_file(shown, _type_name(info.st_mode), what)
        if info.st_size > limit:
            raise _too_large(shown, what, limit, info.st_size)
        return _read_capped(handle, shown, limit, what)
    except OSError as err:
        raise failure(err, shown, f"read the {what}") from None
    finally:
        os.close(handle)


def _read_capped(handle: int, shown: str, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(handle, min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_large(shown, what, limit, None)


def _too_large(shown: str, what: str, limit: int, size: int | None) -> FileError:
    said = f"file is {size / MiB:.1f} MiB" if size is not None else f"file is larger than {_limit_text(limit)}"
    return FileError(Location(shown), f"{said}; {what}s are limited to {_limit_text(limit)}")


def read_text(path: Path, shown: str, *, limit: int, what: str = "file") -> str:
    """A regular file's UTF-8 text; bytes that are not UTF-8 are a FileError at their line."""
    raw = read_bytes(path, shown, limit=limit, what=what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise FileError(Location(shown, line), f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                        f"{err.start})") from None


def listing(folder: Path, shown: str) -> list[Path]:
    """The entries of a folder, sorted by name."""
    try:
        return sorted(folder / name for name in os.listdir(folder))
    except OSError as err:
        raise failure(err, shown, "list the folder") from None


def entries(folder: Path) -> dict[str, str]:
    """What is below `folder`, folders aside: relative path -> "file", or what else it is ("link",
    "FIFO", ...); links are not followed, nothing is opened. {} if it cannot be listed. For comparing
    what is on disk, where an odd or vanished entry just means "differs"."""
    found: dict[str, str] = {}
    for top, folders, names in os.walk(folder):
        folders.sort()
        for name in [*names, *(f for f in folders if (Path(top) / f).is_symlink())]:
            path = Path(top) / name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            found[path.relative_to(folder).as_posix()] = "link" if stat.S_ISLNK(mode) else _type_name(mode)
    return found


def environ(name: str) -> str:
    """An environment variable, "" when unset."""
    return os.environ.get(name, "")


def absolute(path: Path) -> Path:
    """The absolute, normalized path (no `..`), its links kept: what the user named."""
    return Path(os.path.abspath(path))


def resolved(path: Path) -> Path | None:
    """The absolute path without symbolic links, or None when it cannot be resolved (a link loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def make_folder(path: Path, shown: str) -> bool:
    """Create a folder and its parents; True if it was created. An existing file there is an error."""
    if kind(path) == "folder":
        return False
    try:
        path.mkdir(parents=True)
    except FileExistsError as err:
        if kind(path) == "folder":     # made meanwhile, by another render
            return False
        raise failure(err, shown, "create the folder") from None
    except OSError as err:
        raise failure(err, shown, "create the folder") from None
    return True


def write_new(path: Path, shown: str, data: bytes) -> None:
    """Create a file that must not exist yet, with exactly `data`."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise failure(err, shown, "write the file") from None
    try:
        rest = memoryview(data)
        while rest:        # os.write: no file object, whose set-up costs three system calls per file
            rest = rest[os.write(handle, rest):]
    except OSError as err:
        raise failure(err, shown, "write the file") from None
    finally:
        os.close(handle)


def replace_file(path: Path, shown: str, data: bytes) -> None:
    """Write a whole file or nothing: a temporary file beside it, renamed into place."""
    make_folder(path.parent, shown)
    temporary = path.with_name(f".{path.name}-{os.getpid()}.tmp")
    try:
        remove_tree(temporary)
        write_new(temporary, shown, data)
        os.replace(temporary, path)
    except OSError as err:
        raise failure(err, shown, "write the file") from None
    finally:
        remove_tree(temporary)


def rename(source: Path, target: Path, shown: str) -> None:
    try:
        os.rename(source, target)
    except OSError as err:
        raise failure(err, shown, "move the new files into place") from None


def exchange(a: Path, b: Path, shown: str) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    import ctypes  # only here: a render that writes no folder does not load it

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise failure(OSError(code, os.strerror(code)), shown, "swap the new files in")


def remove_tree(path: Path) -> None:
    """Remove a file, link or folder if there, as far as the system allows; never raises."""
    with contextlib.suppress(OSError):
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def remove_empty_folder(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def device(path: Path) -> int | None:
    try:
        return path.stat().st_dev
    except OSError:
        return None
