"""etcd and kube-apiserver on 127.0.0.1 as child processes (the KServe manager: manager.py).

Every process is started in its own process group and registered with a Supervisor, which
stops them all (SIGTERM to the group, then SIGKILL) at teardown, at interpreter exit and on
SIGINT/SIGTERM/SIGHUP, so neither a failing test nor Ctrl-C leaves one running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import yaml
from kube import Kube

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "control-plane"
CACHE = REPO / ".cache" / "conformance"
BUILD = "tools/control-plane/build"
LOOPBACK = "127.0.0.1"
STOP_GRACE = 10.0   # seconds between SIGTERM and SIGKILL


class NotBuilt(Exception):
    """A binary `tools/control-plane/build` should have made is missing (or cannot be built here)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class Supervisor:
    """Owns every child process; stop_all() is idempotent and runs on exit and on signals."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.started: list[subprocess.Popen[bytes]] = []
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
        atexit.register(self.stop_all)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_all()
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    def start(self, name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        with log.open("ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True, preexec_fn=_die_with_parent)
        self.children[name] = process
        self.started.append(process)

    def running(self) -> list[int]:
        """Every process this supervisor ever started that is still alive."""
        return [p.pid for p in self.started if p.poll() is None]

    def check_alive(self, name: str, log: Path) -> None:
        code = self.children[name].poll()
        if code is not None:
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"{name} exited with {code}; last lines of {log}:\n" + "\n".join(tail))

    def stop(self, name: str) -> None:
        process = self.children.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            self.stop(name)

    def restore_signals(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        atexit.unregister(self.stop_all)


_PRCTL = ctypes.CDLL(None).prctl   # resolved here: the child of a threaded process must not dlopen
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: be killed when the test process dies, even by SIGKILL (Linux)."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA and a serving certificate for 127.0.0.1 (API server and webhooks)."""

    ca: Path
    cert: Path
    key: Path
    sa_key: Path
    sa_pub: Path

    @classmethod
    def make(cls, folder: Path) -> Certificates:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "san.ext").write_text(f"subjectAltName=IP:{LOOPBACK},DNS:localhost\n")
        for command in (
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=llmpack-conformance-ca"],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
             "-subj", f"/CN={LOOPBACK}"],
            ["openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tls.crt", "-days", "2", "-extfile", "san.ext"],
            ["openssl", "genrsa", "-out", "sa.key", "2048"],
            ["openssl", "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        ):
            run(command, folder)
        return cls(folder / "ca.crt", folder / "tls.crt", folder / "tls.key", folder / "sa.key", folder / "sa.pub")


def wait_http(url: str, what: str, alive: Callable[[], None], timeout: float = 60,
              context: ssl.SSLContext | None = None, token: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while True:
        alive()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context,
                                        timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready at {url} after {timeout:.0f} s")
        time.sleep(0.2)


def apiserver_binary() -> Path:
    gomod = (REPO / "tools" / "control-plane" / "kube-apiserver" / "go.mod").read_text()
    found = re.search(r"^require k8s\.io/kubernetes (v\S+)$", gomod, re.MULTILINE)
    assert found, "tools/control-plane/kube-apiserver/go.mod pins no k8s.io/kubernetes"
    binary = TOOLS / f"kube-apiserver-{found.group(1)}"
    if not binary.is_file():
        raise NotBuilt(f"{binary} is missing: run `{BUILD} apiserver` (make conformance does)")
    return binary


class Cluster:
    """etcd + kube-apiserver for the whole session; KServe managers come and go (one at a time)."""

    def __init__(self, folder: Path, supervisor: Supervisor) -> None:
        self.folder, self.supervisor = folder, supervisor
        self.certs = Certificates.make(folder / "pki")
        # The bearer token guards a loopback API server that lives for one session; it is a
        # credential, not test input, so it may differ per run.
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.server = f"https://{LOOPBACK}:{self.port}"
        self.kubeconfig = folder / "kubeconfig"
        self.logs = folder / "logs"
        self.logs.mkdir(exist_ok=True)

    def start(self) -> Kube:
        self._start_etcd()
        self._start_apiserver()
        self._write_kubeconfig()
        return Kube(self.server, self.token, self.certs.ca)

    def _start_etcd(self) -> None:
        etcd = shutil.which("etcd")
        if etcd is None:
            raise NotBuilt(f"etcd is not on PATH: run `{BUILD} etcd` (make conformance does)")
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://{LOOPBACK}:{client}"
        log = self.logs / "etcd.log"
        self.supervisor.start("etcd", [
            etcd, "--name", "n0", "--data-dir", str(self.folder / "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://{LOOPBACK}:{peer}",
            "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{peer}",
            "--initial-cluster", f"n0=http://{LOOPBACK}:{peer}",
        ], log)
        wait_http(f"{self.etcd_url}/health", "etcd", lambda: self.supervisor.check_alive("etcd", log))

    def _start_apiserver(self) -> None:
        (self.folder / "tokens.csv").write_text(f"{self.token},admin,admin,system:masters\n")
        log = self.logs / "kube-apiserver.log"
        self.supervisor.start("kube-apiserver", [
            str(apiserver_binary()), f"--etcd-servers={self.etcd_url}",
            f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}", f"--secure-port={self.port}",
            f"--tls-cert-file={self.certs.cert}", f"--tls-private-key-file={self.certs.key}",
            f"--cert-dir={self.folder / 'apiserver-certs'}",
            "--authorization-mode=AlwaysAllow", f"--token-auth-file={self.folder / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.certs.sa_pub}",
            f"--service-account-signing-key-file={self.certs.sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16", "--enable-priority-and-fairness=false",
            "--endpoint-reconciler-type=none",
        ], log)
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        wait_http(f"{self.server}/readyz", "kube-apiserver",
                  lambda: self.supervisor.check_alive("kube-apiserver", log), context=context, token=self.token)

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "conformance",
            "clusters": [{"name": "conformance", "cluster": {"server": self.server,
                                                             "certificate-authority": str(self.certs.ca)}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "conformance", "context": {"cluster": "conformance", "user": "admin"}}],
        }))
