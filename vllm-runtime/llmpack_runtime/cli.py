"""The command line: parse arguments, read the environment, run a command, turn errors into exit codes.

Exit codes: 0 ok (or healthy), 1 failure (or unhealthy), 2 usage error. Only bugs print a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from llmpack_runtime import __version__, head, probe, settings, status, worker
from llmpack_runtime.errors import EXIT_FAILURE, EXIT_USAGE, RuntimeFailure
from llmpack_runtime.settings import Env, Variable

DESCRIPTION = """\
The entrypoint of llmpack's vLLM runtime image for multi-node serving on KServe (Ray backend).
The head pod runs `head` (which starts `status`), worker pods run `worker`, and both use `probe` for their probes.
Everything is configured through environment variables (KServe's contract plus LLMPACK_*);
`COMMAND --help` lists the ones a command reads.
"""

HELP_OPTIONS = ("-h", "--help")


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    environment = os.environ if env is None else env
    parser = _parser()
    if args[:1] == ["head"] and not set(args[1:2]) & set(HELP_OPTIONS):
        server_args = args[2:] if args[1:2] == ["--"] else args[1:]
        return _run(lambda: head.run(head.HeadSettings.from_env(environment), server_args))
    parsed = parser.parse_args(args)
    if parsed.command == "worker":
        return _run(lambda: worker.run(worker.WorkerSettings.from_env(environment)))
    if parsed.command == "probe":
        return _run(lambda: _probe(parsed.kind, environment))
    if parsed.command == "status":
        # it runs next to the head and shares its log: its errors must not read as the head's
        return _run(lambda: status.serve(status.StatusSettings.from_env(environment)), scope="status: ")
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _run(command: Callable[[], int], scope: str = "") -> int:
    try:
        return command()
    except RuntimeFailure as err:
        print(f"llmpack: {scope}error: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        print("llmpack: interrupted", file=sys.stderr)
        return 130


def _probe(kind: str, env: Env) -> int:
    timeout = settings.seconds(env, settings.QUERY_TIMEOUT)
    if kind == "worker":
        address = settings.head_address(env)
        result = probe.bounded(kind, timeout, lambda: probe.probe_worker(address, timeout))
    else:
        config = probe.HeadProbeSettings.from_env(env, kind)
        result = probe.bounded(kind, timeout, lambda: probe.probe_head(kind, config))
    print(f"llmpack: {result.message}", flush=True)
    return 0 if result.healthy else EXIT_FAILURE


def _variables(title: str, variables: Sequence[Variable]) -> str:
    return "\n".join([f"{title}:", *(v.help_line() for v in dict.fromkeys(variables))])


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="python3 -m llmpack_runtime", description=DESCRIPTION, formatter_class=raw,
                                     epilog="exit codes: 0 ok or healthy, 1 failure or unhealthy, 2 usage error")
    parser.add_argument("--version", action="version", version=f"llmpack_runtime {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    start = commands.add_parser(
        "head", help="check the model, start the Ray head, wait for the cluster, exec the server",
        formatter_class=raw, epilog=_variables("environment", head.VARIABLES),
        description="Check the model completion marker, start the Ray head, wait until RAY_NODE_COUNT nodes with "
                    "TENSOR_PARALLEL_SIZE x PIPELINE_PARALLEL_SIZE GPUs are alive, then replace this process with\n"
                    "  SERVER_COMMAND --model_name=MODEL_NAME --model_dir=MODEL_DIR --tensor-parallel-size=TP "
                    "--pipeline-parallel-size=PP SERVER_ARGS...\n"
                    "Every argument after `head` (or after `head --`) is passed to the server.")
    start.add_argument("server_args", nargs="*", metavar="SERVER_ARGS", help="extra server arguments")

    commands.add_parser(
        "worker", help="wait for the head, join its Ray cluster, leave when the head goes away",
        formatter_class=raw, epilog=_variables("environment", worker.VARIABLES),
        description="Wait for the head's Ray GCS (pauses doubling from 1 s to 16 s, at most LLMPACK_RAY_WAIT_SECONDS), "
                    "join it with `ray start --block`, and check the head every LLMPACK_HEAD_CHECK_SECONDS. Exits "
                    "non-zero when no head appears, when the Ray node ends, after LLMPACK_HEAD_CHECK_FAILURES failed "
                    "checks in a row, or when the head restarted (new cluster id), so that the pod restarts.")

    check = commands.add_parser(
        "probe", help="one probe of a head or worker pod: exit 0 healthy, 1 unhealthy",
        formatter_class=raw,
        epilog="\n\n".join([_variables("environment (head probes)", probe.HEAD_VARIABLES),
                            _variables("environment (worker probe)", probe.WORKER_VARIABLES)]),
        description="startup, readiness: the head's Ray cluster has RAY_NODE_COUNT nodes and TP x PP GPUs, and the "
                    "server's health URL answers 200.\nliveness: the Ray part only.\nworker: the head's GCS answers.\n"
                    "A probe prints one line and ends within LLMPACK_PROBE_TIMEOUT_SECONDS.")
    check.add_argument("kind", choices=probe.KINDS, help="which probe")

    commands.add_parser(
        "status", help="serve the Ray cluster's nodes and GPUs as JSON (the head starts it for the smoke test)",
        formatter_class=raw, epilog=_variables("environment", status.VARIABLES),
        description=f"Answer GET {status.PATH} on LLMPACK_STATUS_ADDRESS:LLMPACK_STATUS_PORT with the alive Ray "
                    "nodes and GPUs and the expected ones (200), or why Ray does not answer (503). Read-only; the "
                    "head starts it before Ray, and it stops when the process that started it is gone.")
    return parser
