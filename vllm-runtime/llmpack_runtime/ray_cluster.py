"""Ray, seen from outside: the `ray start` command lines and a bounded reading of the cluster's nodes and GPUs.

Reading runs in a child process (`python3 -m llmpack_runtime.ray_cluster ADDRESS TIMEOUT`) that asks the GCS
directly, as `ray health-check` does. The child can be killed at the deadline when a GCS hangs, the caller never
imports ray, and no Ray driver (job, worker processes, log files) is created per look, which matters for probes
that run every few seconds for weeks.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmpack_runtime.deadline import Deadline
from llmpack_runtime.errors import CommandFailed, RayUnavailable
from llmpack_runtime.settings import Parallelism, RayNode, split_address

ALIVE = 0  # GcsNodeInfo.GcsNodeState.ALIVE
PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
PORT_CHECK_SECONDS = 3.0


@dataclass(frozen=True)
class ClusterState:
    """Alive Ray nodes, their GPUs, and the id of this GCS (a restarted head has a new one)."""

    nodes: int
    gpus: float
    cluster_id: str

    def satisfies(self, expected: Parallelism) -> bool:
        return self.nodes >= expected.nodes and self.gpus >= expected.gpus

    def progress(self, expected: Parallelism) -> str:
        return f"{self.nodes} of {expected.nodes}, GPUs {self.gpus:g} of {expected.gpus}"


def ray_executable() -> str:
    """The `ray` next to this Python (same installation), else the one on PATH."""
    sibling = Path(sys.executable).parent / "ray"
    found = str(sibling) if sibling.is_file() else shutil.which("ray")
    if found is None:
        raise CommandFailed(["ray"], "was not found next to Python or on PATH; is ray installed in this image?")
    return found


def start_command(node: RayNode, head_address: str | None = None) -> list[str]:
    """`ray start` for a head (no address) or for a worker joining `head_address` (blocking)."""
    command = [ray_executable(), "start"]
    if head_address is None:
        command += ["--head", f"--port={node.port}", f"--node-ip-address={node.ip}", "--disable-usage-stats",
                    "--include-dashboard=false"]
    else:
        command += [f"--address={head_address}", f"--node-ip-address={node.ip}", "--disable-usage-stats", "--block"]
    if node.num_gpus is not None:
        command.append(f"--num-gpus={node.num_gpus}")
    return command + list(node.extra_args)


def query(address: str, timeout: float) -> ClusterState:
    """Read the cluster behind the GCS at `address`, within `timeout` seconds, or raise RayUnavailable."""
    deadline = Deadline.after(timeout)
    host, port = split_address(address)
    _check_port(address, host, port, min(deadline.remaining(), PORT_CHECK_SECONDS))
    left = max(deadline.remaining(), 0.1)
    command = [sys.executable, "-m", "llmpack_runtime.ray_cluster", address, f"{left:.3f}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=left, env=child_env(), check=False)
    except subprocess.TimeoutExpired:
        raise RayUnavailable(address, f"no answer within {timeout:g}s") from None
    return _parse(address, done)


def child_env() -> dict[str, str]:
    """This process's environment, with this package importable (for `python3 -m llmpack_runtime...` children)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
    return env


def _check_port(address: str, host: str, port: int, timeout: float) -> None:
    """Fail fast when nothing listens: the GCS client would otherwise retry for most of a minute."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as err:
        raise RayUnavailable(address, f"cannot resolve {host} ({err.strerror})") from None
    except ConnectionRefusedError:
        raise RayUnavailable(address, "connection refused (nothing listens there yet)") from None
    except OSError as err:
        raise RayUnavailable(address, f"cannot connect ({err.strerror or err})") from None


def _parse(address: str, done: subprocess.CompletedProcess[str]) -> ClusterState:
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if done.returncode == 0 and "nodes" in answer:
        return ClusterState(int(answer["nodes"]), float(answer["gpus"]), str(answer["cluster_id"]))
    reason = answer.get("error") or _last_line(done.stderr) or f"the reader exited with code {done.returncode}"
    raise RayUnavailable(address, str(reason))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def read_cluster(address: str, timeout: float) -> dict[str, Any]:
    """The child's side: ask the GCS for every node; count the alive ones and their GPUs."""
    raylet: Any = importlib.import_module("ray._raylet")
    client = raylet.GcsClient(address=address)
    nodes = [n for n in client.get_all_node_info(timeout=timeout).values() if n.state == ALIVE]
    gpus = sum(float(n.resources_total.get("GPU", 0.0)) for n in nodes)
    return {"nodes": len(nodes), "gpus": gpus, "cluster_id": client.cluster_id.hex()}


def _child(argv: list[str]) -> int:
    try:
        print(json.dumps(read_cluster(argv[0], float(argv[1]))), flush=True)
    except Exception as err:  # the parent reports it as "Ray does not answer"; the kind helps reading it
        print(json.dumps({"error": f"{type(err).__name__}: {err}".strip()}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
