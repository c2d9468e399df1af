"""`head`: check the model marker, start the Ray head, wait for every node and GPU, then become the server.

The server replaces this process (exec), so it is the container's main process and its exit ends the pod's
container, exactly as with KServe's own shell entrypoint.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from llmpack_runtime import marker, ray_cluster, settings, status
from llmpack_runtime.deadline import Deadline
from llmpack_runtime.errors import ClusterIncomplete, CommandFailed, RayUnavailable
from llmpack_runtime.log import say
from llmpack_runtime.settings import Env, Parallelism, RayNode, Timing

VARIABLES = (
    *settings.PARALLELISM_VARIABLES, settings.MODEL_NAME, settings.MODEL_DIR, settings.MARKER_FILE,
    settings.MODEL, *settings.RAY_NODE_VARIABLES, settings.RAY_WAIT, settings.POLL, settings.QUERY_TIMEOUT,
    settings.SERVER_COMMAND, settings.STATUS_ADDRESS, settings.STATUS_PORT,
)

RAY_START_SECONDS = 300  # `ray start --head` returns in seconds; this only guards against a hang


@dataclass(frozen=True)
class HeadSettings:
    parallelism: Parallelism
    node: RayNode
    timing: Timing
    model_name: str
    model_dir: Path
    marker: Path
    expected_model: str | None
    server_prefix: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Env) -> HeadSettings:
        model_dir = Path(settings.text(env, settings.MODEL_DIR))
        return cls(
            parallelism=Parallelism.from_env(env), node=RayNode.from_env(env), timing=Timing.from_env(env),
            model_name=settings.text(env, settings.MODEL_NAME), model_dir=model_dir,
            marker=model_dir / settings.text(env, settings.MARKER_FILE),
            expected_model=settings.optional_text(env, settings.MODEL),
            server_prefix=settings.words(env, settings.SERVER_COMMAND),
        )


def run(config: HeadSettings, server_args: Sequence[str]) -> NoReturn:
    found = marker.check(config.marker, config.expected_model)
    say(f"model ready: {config.marker} holds {found!r}")
    status.spawn()  # before Ray, so that it answers "unavailable" while Ray starts; it outlives the exec below
    start_ray_head(config.node)
    wait_for_cluster(config.node.head_address, config.parallelism, config.timing)
    command = server_command(config, server_args)
    say(f"starting the server: {' '.join(command)}")
    env = dict(os.environ)
    env.setdefault("RAY_ADDRESS", config.node.head_address)  # vLLM joins this cluster instead of starting one
    try:
        # The server command comes from the image and the pod spec, never from a request.
        os.execvpe(command[0], command, env)  # noqa: S606
    except OSError as err:
        raise CommandFailed(command, f"cannot be started ({err.strerror or err})") from None


def start_ray_head(node: RayNode) -> None:
    command = ray_cluster.start_command(node)
    say(f"starting the Ray head: {' '.join(command)}")
    try:
        code = subprocess.run(command, timeout=RAY_START_SECONDS, check=False).returncode
    except subprocess.TimeoutExpired:
        raise CommandFailed(command, f"did not finish within {RAY_START_SECONDS}s") from None
    if code != 0:
        raise CommandFailed(command, f"failed with exit code {code}")


def wait_for_cluster(address: str, expected: Parallelism, timing: Timing) -> ray_cluster.ClusterState:
    """Poll the cluster until it holds the expected nodes and GPUs; ClusterIncomplete after `timing.wait`."""
    deadline = Deadline.after(timing.wait)
    seen = "Ray never answered"
    while True:
        try:
            state = ray_cluster.query(address, timing.query)
        except RayUnavailable as err:
            progress = f"Ray is not answering yet ({err.reason})"
        else:
            progress = seen = f"Ray nodes: {state.progress(expected)}"
            if state.satisfies(expected):
                say(f"Ray cluster complete: {progress} ({deadline.elapsed():.0f}s)")
                return state
        if deadline.expired:
            raise ClusterIncomplete(deadline.elapsed(), seen)
        say(f"waiting for {progress} ({deadline.elapsed():.0f}s)")
        time.sleep(min(timing.poll, deadline.remaining()))


def server_command(config: HeadSettings, server_args: Sequence[str]) -> list[str]:
    return [
        *config.server_prefix,
        f"--model_name={config.model_name}",
        f"--model_dir={config.model_dir}",
        f"--tensor-parallel-size={config.parallelism.tensor}",
        f"--pipeline-parallel-size={config.parallelism.pipeline}",
        *server_args,
    ]
