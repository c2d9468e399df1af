"""Where CRDs come from: folders, and the pinned files fetched from a Go module proxy (by range
requests into the module archive) or GitHub's raw file server, each checked by sha256. The
servers here are real HTTP servers on 127.0.0.1 laid out like proxy.golang.org and
raw.githubusercontent.com; the files are the real CRDs."""

from __future__ import annotations

import http.server
import io
import os
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from generator import crds, fetch
from generator.errors import ToolError
from generator.releases import RELEASES, PinnedCrds
from helpers import REPO, crd_dir, kserve_release

KSERVE = RELEASES["0.16"].crds
Serve = Callable[..., "Server"]
FILLER = 4 << 20       # the rest of a module archive, which range requests should not download


@dataclass
class Server:
    """Files by URL path, served with or without range requests, counting the bytes it sends."""

    files: dict[str, bytes]
    ranges: bool = True
    refuse: set[str] = field(default_factory=set)
    sent: int = 0
    url: str = ""


def module_zip(pinned: PinnedCrds, tamper: str | None = None) -> bytes:
    """A Go module archive holding the real CRD files of `pinned` (and much else, uncompressed)."""
    out = io.BytesIO()
    prefix = f"{pinned.module}@{pinned.version}"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(f"{prefix}/go.mod"), f"module {pinned.module}\n")
        archive.writestr(zipfile.ZipInfo(f"{prefix}/python/big.bin"), b"x" * FILLER)   # ZipInfo: stored as is
        for name in pinned.files:
            body = (crd_dir() / pinned.folder / name).read_bytes()
            archive.writestr(f"{prefix}/{pinned.path}/{name}", body + (b"# tampered\n" if name == tamper else b""))
    return out.getvalue()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(files, ranges=..., refuse=...) starts a real HTTP server on 127.0.0.1 for those files."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(files: dict[str, bytes], ranges: bool = True, refuse: Iterable[str] = ()) -> Server:
        state = Server(files, ranges, set(refuse))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = state.files.get(self.path)
                if self.path in state.refuse:
                    self.send_error(403, "This module version is not available")
                    return
                if body is None:
                    self.send_error(404)
                    return
                match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                if match and state.ranges:
                    first, last = int(match.group(1)), min(int(match.group(2)), len(body) - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
                    body = body[first:last + 1]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                state.sent += len(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def proxy_files(pinned: PinnedCrds, tamper: str | None = None) -> dict[str, bytes]:
    return {f"/{pinned.module}/@v/{pinned.version}.zip": module_zip(pinned, tamper)}


def sources(tmp_path: Path, *proxies: str, github: str = "http://127.0.0.1:9") -> crds.SchemaSources:
    return crds.SchemaSources((), tmp_path / "cache", proxies, github)


def test_range_requests_fetch_only_the_crd_files(serve: Serve, tmp_path: Path) -> None:
    kserve_release("0.16.0")
    proxy = serve(proxy_files(KSERVE))
    found = crds.fetch(sources(tmp_path, proxy.url), KSERVE)
    assert [p.name for p in found.files] == sorted(KSERVE.files)
    assert all(p.read_bytes() == (crd_dir() / KSERVE.folder / p.name).read_bytes() for p in found.files)
    assert proxy.sent < FILLER / 2, "the archive's other files were downloaded"
    assert found.origins == ("KServe 0.16.0 CRDs from github.com/kserve/kserve@v0.16.0 (sha256 pinned)",)


def test_a_proxy_without_ranges_still_works_and_a_second_fetch_uses_the_cache(serve: Serve,
                                                                             tmp_path: Path) -> None:
    kserve_release("0.16.0")
    proxy = serve(proxy_files(KSERVE), ranges=False)
    crds.fetch(sources(tmp_path, proxy.url), KSERVE)
    sent = proxy.sent
    assert sent > FILLER
    crds.fetch(sources(tmp_path, proxy.url), KSERVE)
    assert proxy.sent == sent


def test_a_wrong_digest_is_refused_and_nothing_is_stored(serve: Serve, tmp_path: Path) -> None:
    kserve_release("0.16.0")
    proxy = serve(proxy_files(KSERVE, tamper="serving.kserve.io_servingruntimes.yaml"))
    with pytest.raises(ToolError) as caught:
        crds.fetch(sources(tmp_path, proxy.url), KSERVE)
    assert "serving.kserve.io_servingruntimes.yaml has sha256 " in str(caught.value)
    assert f"expected {KSERVE.files['serving.kserve.io_servingruntimes.yaml']}: refused, nothing stored" \
        in str(caught.value)
    assert not (tmp_path / "cache/crds/kserve/v0.16.0").exists()


def test_a_release_the_proxy_refuses_comes_from_github(serve: Serve, tmp_path: Path) -> None:
    kserve_release("0.16.0")
    proxy = serve({}, refuse={f"/{KSERVE.module}/@v/{KSERVE.version}.zip"})
    raw = {f"/kserve/kserve/v0.16.0/config/crd/full/{name}": (crd_dir() / KSERVE.folder / name).read_bytes()
           for name in KSERVE.files}
    github = serve(raw)
    found = crds.fetch(sources(tmp_path, proxy.url, github=github.url), KSERVE)
    assert sorted(p.name for p in found.files) == sorted(KSERVE.files)


def test_nothing_reachable_says_what_was_tried_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ToolError) as caught:
        crds.fetch(sources(tmp_path, "http://127.0.0.1:9"), KSERVE)
    text = str(caught.value)
    assert text.startswith("cannot fetch the KServe 0.16.0 CRDs for the schema check:\n")
    assert "  - http://127.0.0.1:9 (github.com/kserve/kserve@v0.16.0): unreachable" in text
    assert "  - http://127.0.0.1:9/kserve/kserve/v0.16.0/config/crd/full: unreachable" in text
    assert "--crd-dir" in text and "--no-crd-check" in text


def test_goproxy_lists_servers_and_skips_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOPROXY", "https://goproxy.example,direct|https://b.example")
    assert crds.go_proxies() == ("https://goproxy.example", "https://b.example")
    monkeypatch.setenv("GOPROXY", "off")
    assert crds.go_proxies() == (crds.DEFAULT_GOPROXY,)


def test_every_pinned_module_path_is_escaped_as_the_proxy_wants() -> None:
    assert fetch.escape("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"
    pinned = [release.crds for release in RELEASES.values()] + list(crds.GITOPS_CRDS)
    assert all(fetch.escape(p.module) == p.module for p in pinned)


def llmpack(*args: str, cache: Path, proxy: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "LLMPACK_CACHE_DIR": str(cache), "GOPROXY": proxy,
           "LLMPACK_KUBECONFORM": str(REPO / ".tools/bin/kubeconform-v0.7.0")}
    return subprocess.run([sys.executable, "-m", "generator", "-C", str(REPO), *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_a_render_fetches_what_it_needs_and_says_what_it_validated_against(serve: Serve,
                                                                           tmp_path: Path) -> None:
    """No CRD folder given: the dev bundle (KServe 0.16) validates against CRDs fetched from the proxy."""
    kserve_release("0.16.0")
    proxy = serve(proxy_files(KSERVE))
    done = llmpack("validate", "--env", "dev", cache=tmp_path / "cache", proxy=proxy.url)
    assert done.returncode == 0, done.stderr
    assert f"llmpack: fetching KServe 0.16.0 CRDs from {proxy.url} (github.com/kserve/kserve@v0.16.0) ...\n" \
        in done.stderr
    assert ("KServe 0.16.0 CRDs from github.com/kserve/kserve@v0.16.0 (sha256 pinned)" in done.stdout), done.stdout
    assert "against Kubernetes 1.33 (core schemas of kubernetes-validate 1.35.0)" in done.stdout


def test_no_crd_check_is_said_out_loud(tmp_path: Path) -> None:
    done = llmpack("validate", "--env", "dev", "--no-crd-check", cache=tmp_path / "cache", proxy="off")
    assert done.returncode == 0, done.stderr
    assert "not validated against the Kubernetes and CRD schemas (--no-crd-check)" in done.stdout


def test_schemas_fetch_reports_each_release(serve: Serve, tmp_path: Path) -> None:
    kserve_release("0.16.0")
    proxy = serve(proxy_files(KSERVE))
    done = llmpack("schemas", "fetch", "--kserve-version", "0.16", cache=tmp_path / "cache", proxy=proxy.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ok     KServe 0.16.0: {tmp_path / 'cache/crds/kserve/v0.16.0'}\n"
    failed = llmpack("schemas", "fetch", "--kserve-version", "0.20", "--github-url", "http://127.0.0.1:9",
                     cache=tmp_path / "cache", proxy=proxy.url)
    assert failed.returncode == 1 and failed.stderr.startswith("llmpack: fetching KServe 0.20.0 CRDs")
    assert "FAILED KServe 0.20.0: cannot fetch the KServe 0.20.0 CRDs" in failed.stderr
