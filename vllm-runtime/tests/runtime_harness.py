"""The test harness: the runtime's commands as real processes against real Ray on the loopback interface.

Every process starts in a session of its own; `Runtime.cleanup` kills each of those sessions whole (the Ray
daemons that `ray start` leaves behind included). A module name of its own, so that it never collides with the
generator's tests/conftest.py when both suites run in one pytest session.

Ray runs on 127.0.0.2: Ray replaces the address 127.0.0.1 with the machine's outward address, which would
send the test cluster's traffic off the loopback interface.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

RUNTIME_DIR = Path(__file__).resolve().parent.parent

RAY_IP = "127.0.0.2"
FAKE_SERVER = Path(__file__).resolve().parent / "fake_server.py"
MODEL = "meta-llama/Meta-Llama-3-8B-Instruct@8afb486c1db24fe5011ec46dfbe5b5dccdb575c2"
CLEARED_PREFIXES = ("RAY_", "LLMPACK_")
CLEARED = {"TENSOR_PARALLEL_SIZE", "PIPELINE_PARALLEL_SIZE", "MODEL_NAME", "MODEL_DIR", "POD_IP", "POD_NAMESPACE",
           "HEAD_SVC", "PYTHONPATH"}

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


# Ray takes seconds to start on a quiet machine and minutes on a loaded 2-core one: every bounded wait
# allows PATIENCE times what its test names. Only a failing run waits longer for it.
PATIENCE = 3


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """Call `check` until it returns something truthy; fail the test after PATIENCE x `timeout` seconds."""
    timeout *= PATIENCE
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def get_json(url: str, timeout: float = 20) -> tuple[int, Any] | None:
    """GET `url` without a proxy: (status, JSON document or the text), or None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            status, body = int(answer.status), answer.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    except (urllib.error.URLError, OSError):
        return None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def session_members(sid: int) -> list[int]:
    """Every live process whose session id is `sid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def kill_session(sid: int) -> None:
    """SIGKILL every process of a session until none is left (a killed `ray start` may still be forking)."""
    deadline = time.monotonic() + 15
    while members := session_members(sid):
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {members} of session {sid} survive SIGKILL")
        time.sleep(0.1)


class Proc:
    """A runtime command started in its own session, its output going to a log file."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.log.name} still runs after {timeout:g}s; its output:\n{self.output()}")

    def running(self) -> bool:
        return self.popen.poll() is None


class Runtime:
    """Starts `python -m llmpack_runtime ...` with a test environment and cleans up after the test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.model_dir = root / "model"
        self.model_dir.mkdir()
        (self.model_dir / ".llmpack-complete").write_text(MODEL + "\n")
        self.record = root / "server.json"
        self.status_port = free_port()
        self.base: dict[str, str] = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(RUNTIME_DIR),
            "TENSOR_PARALLEL_SIZE": "1", "PIPELINE_PARALLEL_SIZE": "2", "MODEL_NAME": "llama",
            "MODEL_DIR": str(self.model_dir), "LLMPACK_MODEL": MODEL,
            "POD_IP": RAY_IP, "RAY_PORT": str(self.port), "LLMPACK_HEAD_ADDRESS": f"{RAY_IP}:{self.port}",
            "LLMPACK_RAY_NUM_GPUS": "1",
            "LLMPACK_SERVER_COMMAND": f"{sys.executable} {FAKE_SERVER}", "FAKE_SERVER_RECORD": str(self.record),
            "LLMPACK_RAY_WAIT_SECONDS": "90", "LLMPACK_POLL_SECONDS": "1", "LLMPACK_PROBE_TIMEOUT_SECONDS": "8",
            "LLMPACK_HEAD_CHECK_SECONDS": "1", "LLMPACK_HEAD_CHECK_FAILURES": "3",
            # a killed node is declared dead after about 3 s instead of about 30 s
            "RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
            "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "2",
            "RAY_USAGE_STATS_ENABLED": "0",
            "LLMPACK_STATUS_ADDRESS": "127.0.0.1", "LLMPACK_STATUS_PORT": str(self.status_port),
        }
        self.sessions: list[Proc] = []
        self.count = 0

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in CLEARED and not k.startswith(CLEARED_PREFIXES)}
        env.update(self.base)
        self.count += 1
        # each Ray node gets its own short temp dir (Unix socket paths must stay under 108 bytes)
        env["LLMPACK_RAY_START_ARGS"] = (f"--temp-dir={self.root}/r{self.count} --num-cpus=1 "
                                         "--object-store-memory=100000000")
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    @property
    def status_url(self) -> str:
        """The cluster status endpoint that `head` (or `status`) serves with the base environment."""
        return f"http://127.0.0.1:{self.status_port}/llmpack/v1/cluster"

    def start(self, *args: str, **env: str | None) -> Proc:
        return self.spawn("-".join(args), [sys.executable, "-m", "llmpack_runtime", *args], **env)

    def spawn(self, name: str, command: Sequence[str], **env: str | None) -> Proc:
        """Start any command with the test environment, in a session of its own that cleanup kills."""
        environment = self.env(**env)
        log = self.root / f"{self.count:02d}-{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(list(command), env=environment, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(popen, log)
        self.sessions.append(proc)
        return proc

    def run(self, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        """Run a command to its end (probes, refusals) within 30 s; its stdout and stderr are captured."""
        return subprocess.run([sys.executable, "-m", "llmpack_runtime", *args], env=self.env(**env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False)

    def probe(self, kind: str, **env: str | None) -> tuple[int, str]:
        done = self.run("probe", kind, **env)
        return done.returncode, (done.stdout + done.stderr).strip()

    def probe_until(self, kind: str, code: int, timeout: float) -> str:
        """Repeat a probe until it exits with `code`; its output then."""
        def probed() -> str | None:
            got, out = self.probe(kind)
            return out if got == code else None

        out = wait_until(probed, timeout, f"probe {kind} to exit {code}")
        assert out is not None
        return out

    def kill(self, proc: Proc) -> None:
        """What a crash does: SIGKILL the command and everything it started (its Ray node included)."""
        kill_session(proc.pid)
        proc.popen.wait()

    def cleanup(self) -> None:
        for proc in self.sessions:
            kill_session(proc.pid)
            if proc.popen.poll() is None:
                proc.popen.kill()
            proc.popen.wait()


class HealthServer:
    """A real HTTP server on 127.0.0.1 standing in for the model server: GET /v1/models/NAME answers `status`."""

    def __init__(self, port: int, model: str = "llama", status: int = 200) -> None:
        self.status = status
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                code = owner.status if self.path == f"/v1/models/{model}" else 404
                body = json.dumps({"name": model, "ready": code == 200}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/v1/models/{model}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HealthServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
