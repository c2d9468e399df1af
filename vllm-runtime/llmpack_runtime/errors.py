"""The one exception tree of the runtime.

The CLI prints `llmpack: error: {error}` and exits with `error.exit_code`; any other exception is a bug
and keeps its traceback. Subclasses keep their facts as fields so tests need not parse text.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_FAILURE = 1
EXIT_USAGE = 2


class RuntimeFailure(Exception):
    """Root of every error the environment or the cluster can cause."""

    exit_code = EXIT_FAILURE


class BadVariable(RuntimeFailure):
    """An environment variable is missing or malformed: a configuration (usage) error."""

    exit_code = EXIT_USAGE

    def __init__(self, name: str, value: str | None, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        got = "is not set" if value is None else f"is {value!r}"
        super().__init__(f"environment variable {name} {got}: {expected}")


class ModelNotReady(RuntimeFailure):
    """The model folder has no readable completion marker, or one for another model or revision."""

    def __init__(self, marker: str, problem: str) -> None:
        self.marker = marker
        self.problem = problem
        super().__init__(f"the model is not ready: {marker} {problem}; "
                         "the download Job has not finished for this model and revision")


class RayUnavailable(RuntimeFailure):
    """The Ray GCS at an address does not answer, or its answer cannot be read."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"Ray at {address} does not answer: {reason}")


class ClusterIncomplete(RuntimeFailure):
    """The head waited its whole budget and the cluster still lacks nodes or GPUs."""

    def __init__(self, waited: float, seen: str) -> None:
        self.waited = waited
        self.seen = seen
        super().__init__(f"the Ray cluster is still incomplete after {waited:.0f}s ({seen}); "
                         "check that the worker pods are running and reach the head "
                         "(or raise LLMPACK_RAY_WAIT_SECONDS)")


class HeadUnreachable(RuntimeFailure):
    """A worker found no Ray head within its budget."""

    def __init__(self, address: str, waited: float, reason: str) -> None:
        self.address = address
        self.waited = waited
        self.reason = reason
        super().__init__(f"no Ray head answered at {address} within {waited:.0f}s (last: {reason}); "
                         "the head pod is not running or not reachable")


class HeadLost(RuntimeFailure):
    """A joined worker lost its head (gone or restarted): the pod must restart and join again."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"lost the Ray head at {address}: {reason}; leaving so that the pod restarts and rejoins")


class EndpointUnavailable(RuntimeFailure):
    """The cluster status endpoint cannot listen on its address (taken, or not an address of this pod)."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"the cluster status endpoint cannot listen on {address} ({reason}); "
                         "the head serves on without it")


class CommandFailed(RuntimeFailure):
    """A command the runtime runs (ray start) failed or ended."""

    def __init__(self, command: Sequence[str], outcome: str) -> None:
        self.command = tuple(command)
        self.outcome = outcome
        super().__init__(f"`{' '.join(self.command)}` {outcome}")
