"""The environment contract: each variable a command reads, its default, and typed readers for it.

KServe injects TENSOR_PARALLEL_SIZE, PIPELINE_PARALLEL_SIZE, RAY_NODE_COUNT, MODEL_NAME, MODEL_DIR and HEAD_SVC;
the pod spec adds RAY_PORT, POD_IP and POD_NAMESPACE; LLMPACK_* variables are llmpack's own. `--help` prints
the tables below, so the documentation and the code read the same defaults.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from llmpack_runtime.errors import BadVariable

Env = Mapping[str, str]


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its default (None: none) and what it means."""

    name: str
    meaning: str
    default: str | None = None

    def help_line(self) -> str:
        default = f" (default: {self.default})" if self.default is not None else ""
        return f"  {self.name:<31} {self.meaning}{default}"


TENSOR_PARALLEL_SIZE = Variable("TENSOR_PARALLEL_SIZE", "GPUs per pod; set by KServe")
PIPELINE_PARALLEL_SIZE = Variable("PIPELINE_PARALLEL_SIZE", "pods, head included; set by KServe")
RAY_NODE_COUNT = Variable("RAY_NODE_COUNT", "Ray nodes to expect; set by KServe 0.15.1+, "
                          "PIPELINE_PARALLEL_SIZE when unset (KServe 0.15.0)")
MODEL_NAME = Variable("MODEL_NAME", "name the server serves the model under; set by KServe")
MODEL_DIR = Variable("MODEL_DIR", "model folder; set by KServe", "/mnt/models")
RAY_PORT = Variable("RAY_PORT", "port of the head's Ray GCS", "6379")
POD_IP = Variable("POD_IP", "this pod's IP (downward API), Ray's --node-ip-address", "127.0.0.1")
HEAD_SVC = Variable("HEAD_SVC", "headless Service of the head; set by KServe on workers")
POD_NAMESPACE = Variable("POD_NAMESPACE", "this pod's namespace (downward API)")
HEAD_ADDRESS = Variable("LLMPACK_HEAD_ADDRESS", "HOST:PORT of the head's GCS, instead of "
                        "HEAD_SVC.POD_NAMESPACE.svc.cluster.local:RAY_PORT")
MARKER_FILE = Variable("LLMPACK_MARKER_FILE", "completion marker in MODEL_DIR, written by the download Job",
                       ".llmpack-complete")
MODEL = Variable("LLMPACK_MODEL", "MODEL_ID@REVISION the marker must hold; unset: any marker will do")
RAY_NUM_GPUS = Variable("LLMPACK_RAY_NUM_GPUS", "ray start --num-gpus; unset: Ray detects the GPUs")
RAY_START_ARGS = Variable("LLMPACK_RAY_START_ARGS", "more ray start arguments (shell syntax)")
RAY_WAIT = Variable("LLMPACK_RAY_WAIT_SECONDS", "how long the head waits for the cluster, "
                    "and a worker for the head", "600")
POLL = Variable("LLMPACK_POLL_SECONDS", "pause between two looks at the cluster", "5")
QUERY_TIMEOUT = Variable("LLMPACK_PROBE_TIMEOUT_SECONDS", "time limit of a probe and of each Ray query", "10")
SERVER_COMMAND = Variable("LLMPACK_SERVER_COMMAND", "server command before its arguments (shell syntax)",
                          "python3 -m huggingfaceserver")
HEAD_CHECK = Variable("LLMPACK_HEAD_CHECK_SECONDS", "pause between two checks of the head by a joined worker", "5")
HEAD_CHECK_FAILURES = Variable("LLMPACK_HEAD_CHECK_FAILURES", "failed head checks in a row after which "
                               "a worker leaves", "3")
SERVER_PORT = Variable("LLMPACK_SERVER_PORT", "port of the server's health route", "8080")
HEALTH_URL = Variable("LLMPACK_HEALTH_URL", "health URL instead of "
                      "http://127.0.0.1:LLMPACK_SERVER_PORT/v1/models/MODEL_NAME")
# Every interface: the predictor Service reaches the endpoint at the pod IP. It is read-only and tells no secret.
STATUS_ADDRESS = Variable("LLMPACK_STATUS_ADDRESS", "address the cluster status endpoint listens on "
                          "(\"::\" for IPv6)", "0.0.0.0")  # noqa: S104
STATUS_PORT = Variable("LLMPACK_STATUS_PORT", "port of the cluster status endpoint (GET /llmpack/v1/cluster)", "8081")


def optional_text(env: Env, var: Variable) -> str | None:
    """The variable's value, else its default; an empty value counts as unset."""
    value = env.get(var.name, "").strip()
    return value or var.default


def text(env: Env, var: Variable, why: str = "") -> str:
    value = optional_text(env, var)
    if value is None:
        raise BadVariable(var.name, None, why or var.meaning)
    return value


def positive_int(env: Env, var: Variable) -> int:
    value = text(env, var)
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise BadVariable(var.name, value, "expected a whole number of at least 1")
    return number


def optional_positive_int(env: Env, var: Variable) -> int | None:
    return positive_int(env, var) if optional_text(env, var) is not None else None


def seconds(env: Env, var: Variable) -> float:
    value = text(env, var)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (0 < number < math.inf):
        raise BadVariable(var.name, value, "expected a positive number of seconds")
    return number


def words(env: Env, var: Variable) -> tuple[str, ...]:
    """A shell-syntax value split into arguments (no shell runs)."""
    value = optional_text(env, var)
    if value is None:
        return ()
    try:
        return tuple(shlex.split(value))
    except ValueError as err:
        raise BadVariable(var.name, value, f"expected shell syntax ({err})") from None


@dataclass(frozen=True)
class Parallelism:
    """What a complete cluster holds: `nodes` Ray nodes and tensor x pipeline GPUs."""

    tensor: int
    pipeline: int
    nodes: int

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline

    @classmethod
    def from_env(cls, env: Env) -> Parallelism:
        pipeline = positive_int(env, PIPELINE_PARALLEL_SIZE)
        nodes = optional_positive_int(env, RAY_NODE_COUNT)
        return cls(positive_int(env, TENSOR_PARALLEL_SIZE), pipeline, pipeline if nodes is None else nodes)


PARALLELISM_VARIABLES = (TENSOR_PARALLEL_SIZE, PIPELINE_PARALLEL_SIZE, RAY_NODE_COUNT)


@dataclass(frozen=True)
class RayNode:
    """How this pod starts its own Ray node."""

    ip: str
    port: int
    num_gpus: int | None
    extra_args: tuple[str, ...]

    @property
    def head_address(self) -> str:
        """The GCS address of a head started on this pod."""
        return join_address(self.ip, self.port)

    @classmethod
    def from_env(cls, env: Env) -> RayNode:
        num_gpus = optional_text(env, RAY_NUM_GPUS)
        return cls(ip=text(env, POD_IP), port=port(env), extra_args=words(env, RAY_START_ARGS),
                   num_gpus=None if num_gpus is None else non_negative_int(RAY_NUM_GPUS, num_gpus))


RAY_NODE_VARIABLES = (RAY_PORT, POD_IP, RAY_NUM_GPUS, RAY_START_ARGS)


@dataclass(frozen=True)
class Timing:
    """The time limits of waiting and checking."""

    wait: float
    poll: float
    query: float
    head_check: float
    head_check_failures: int

    @classmethod
    def from_env(cls, env: Env) -> Timing:
        return cls(wait=seconds(env, RAY_WAIT), poll=seconds(env, POLL), query=seconds(env, QUERY_TIMEOUT),
                   head_check=seconds(env, HEAD_CHECK), head_check_failures=positive_int(env, HEAD_CHECK_FAILURES))


def port(env: Env) -> int:
    return tcp_port(env, RAY_PORT)


def tcp_port(env: Env, var: Variable) -> int:
    number = positive_int(env, var)
    if number > 65535:
        raise BadVariable(var.name, str(number), "expected a TCP port (1-65535)")
    return number


def non_negative_int(var: Variable, value: str) -> int:
    if not value.isdigit():
        raise BadVariable(var.name, value, "expected a whole number")
    return int(value)


def head_address(env: Env) -> str:
    """Where a worker finds the head's GCS: LLMPACK_HEAD_ADDRESS, else the head Service's cluster DNS name."""
    override = optional_text(env, HEAD_ADDRESS)
    if override is not None:
        split_address(override)
        return override
    why = "needed to find the head (or set LLMPACK_HEAD_ADDRESS)"
    service = text(env, HEAD_SVC, why)
    namespace = text(env, POD_NAMESPACE, why)
    return join_address(f"{service}.{namespace}.svc.cluster.local", port(env))


HEAD_ADDRESS_VARIABLES = (HEAD_SVC, POD_NAMESPACE, RAY_PORT, HEAD_ADDRESS)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_address(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port); a malformed address is a usage error."""
    host, sep, number = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not number.isdigit() or not 0 < int(number) < 65536:
        raise BadVariable(HEAD_ADDRESS.name, address, "expected HOST:PORT")
    return host, int(number)
