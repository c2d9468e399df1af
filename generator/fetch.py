"""Fetching pinned files over HTTP (for crds.py): out of a Go module archive on a module proxy,
read with range requests so only the wanted files travel, or one by one from a raw file server.
Every file is checked against its pinned sha256; any difference refuses the whole release.
"""

from __future__ import annotations

import hashlib
import io
import re
import urllib.error
import urllib.request
import zipfile

from generator.errors import ToolError
from generator.releases import PinnedCrds

TIMEOUT_SECONDS = 60
MAX_ARCHIVE_BYTES = 1 << 30      # a server without range requests sends the whole module archive


def from_proxy(proxy: str, pinned: PinnedCrds) -> dict[str, bytes]:
    """The pinned files out of the module archive on a Go module proxy."""
    url = f"{proxy.rstrip('/')}/{escape(pinned.module)}/@v/{pinned.version}.zip"
    prefix = f"{pinned.module}@{pinned.version}/{pinned.path}/"
    with _archive(url) as archive:
        try:
            return _checked(pinned, {name: archive.read(prefix + name) for name in pinned.files})
        except KeyError as err:
            raise ToolError(f"{url} has no {err.args[0]}") from None
        except (zipfile.BadZipFile, OSError) as err:
            raise ToolError(f"{url} is not a readable module archive: {err}") from None


def from_files(base: str, pinned: PinnedCrds) -> dict[str, bytes]:
    return _checked(pinned, {name: _get(f"{base}/{name}") for name in pinned.files})


def _checked(pinned: PinnedCrds, texts: dict[str, bytes]) -> dict[str, bytes]:
    for name, body in texts.items():
        actual = sha256(body)
        if actual != pinned.files[name]:
            raise ToolError(f"{name} has sha256 {actual}, expected {pinned.files[name]}: refused, nothing stored")
    return texts


def escape(module: str) -> str:
    """The Go module proxy's path escaping: an upper-case letter becomes '!' and its lower case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group().lower(), module)


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    return _open(url, headers)[1]


def _open(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - http(s) only, from settings
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return int(response.status), bytes(response.read(MAX_ARCHIVE_BYTES + 1))
    except urllib.error.HTTPError as err:
        raise ToolError(f"{err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ToolError(f"unreachable ({getattr(err, 'reason', err)})") from None


def _archive(url: str) -> zipfile.ZipFile:
    """The module archive as a zip file: read by range requests, or downloaded whole when the
    server ignores ranges."""
    status, head = _open(url, {"Range": "bytes=0-0"})
    if status == 206:
        return zipfile.ZipFile(io.BufferedReader(_Ranges(url), buffer_size=256 * 1024))
    if len(head) > MAX_ARCHIVE_BYTES:
        raise ToolError(f"{url} is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
    return zipfile.ZipFile(io.BytesIO(head))


class _Ranges(io.RawIOBase):
    """A remote file read with HTTP range requests (what zipfile needs: seek, tell, read)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.position = 0
        self.size = self._size()

    def _size(self) -> int:
        request = urllib.request.Request(self.url, headers={"Range": "bytes=0-0"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                total = str(response.headers.get("Content-Range", "")).rpartition("/")[2]
        except (urllib.error.URLError, OSError) as err:
            raise ToolError(f"unreachable ({getattr(err, 'reason', err)})") from None
        if not total.isdigit():
            raise ToolError(f"{self.url}: the server gave no size for a range request")
        return int(total)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.position >= self.size or not len(buffer):
            return 0
        end = min(self.position + len(buffer), self.size) - 1
        status, body = _open(self.url, {"Range": f"bytes={self.position}-{end}"})
        if status != 206:
            raise OSError(f"{self.url} stopped answering range requests")
        buffer[: len(body)] = body
        self.position += len(body)
        return len(body)

