"""The command line: parse arguments, run a command (commands.py), turn errors into exit codes.

Exit codes: 0 ok, 1 invalid input or bundle, 2 usage error. Only unexpected
exceptions (bugs) print a traceback. Everything printed here, argparse's own messages and
tracebacks included, goes through `tokens.redact`: no path prints a Hugging Face token.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from generator import EXIT_INVALID, EXIT_USAGE, __version__, commands

TYPE_CHECKING = False   # typing's, without importing typing on the start-up path (mypy reads it as True)

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

# The start-up path (a no-op render costs little more than this module) imports neither the error
# tree nor the redaction (generator.errors, generator.tokens: dataclasses and 30 regular expressions)
# until a message is printed, and builds the parser of the chosen command only.

DESCRIPTION = """\
llmpack turns one small values file per environment into a validated, deterministic
bundle of Kubernetes manifests for multi-node, multi-GPU vLLM serving on KServe.

A project is a folder with overlays/ (usually your GitOps repository; `llmpack init`
creates one). Values merge in this order, later wins:
  chart defaults                         shipped with llmpack (or the project's charts/)
  overlays/ENV/values.yaml               the environment
  overlays/ENV/releases/RELEASE.yaml     one file per model deployment (optional)
  -f FILE                                extra files, in the order given
  --set KEY=VALUE                        single values (dotted keys)
Maps merge, lists and scalars replace, null deletes a key.
"""

EPILOG = """\
Every render is checked before anything is written: KServe's admission rules, bundle-wide
rules, and the real kubeconform (strict) against the core Kubernetes schemas and the CRDs
of the target KServe release. CRDs come from --crd-dir / LLMPACK_CRD_DIR, else llmpack
fetches the pinned files from the Go module proxy (GOPROXY) on first use and checks their
sha256. kubeconform is found on PATH or built with Go on first use. Caches live in
LLMPACK_CACHE_DIR (default ~/.cache/llmpack).

examples:
  llmpack init                              a new GitOps repository in this folder
  llmpack render --env prod                 write rendered/prod/
  llmpack render --env dev --set workerSpec.size=2 --stdout
  llmpack validate --env prod --crd-dir ~/crds
  llmpack check                             is rendered/ up to date? (CI, pre-commit)
  llmpack diff --env prod --base origin/main   review a change as Markdown
  llmpack plan --env prod --set gpu.type=H100  will the models fit?
  llmpack explain --env prod --release llama3-70b model.env
  llmpack schemas fetch                     fetch every pinned CRD now (e.g. before going offline)
"""

Adder = Callable[[argparse.ArgumentParser], None]


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(_command_named(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        from generator.errors import LlmpackError
        from generator.tokens import redact

        if isinstance(err, LlmpackError):
            print(f"error: {redact(str(err))}", file=sys.stderr)
            return err.exit_code
        import traceback

        # a bug: the traceback is for us, and is redacted like every message
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return EXIT_INVALID


def _command_named(argv: Sequence[str]) -> str | None:
    """The command argv names: its first word, after nothing but llmpack's -C DIR. None when there is
    none, it is no command, or another option of llmpack's own comes first (-h, --version, an
    abbreviation): then every command is built, for argparse's help and usage errors."""
    words = iter(argv)
    for word in words:
        if word in ("-C", "--project"):
            next(words, None)
        elif word.startswith("-"):
            return None
        else:
            return word if word in {"schemas", *(c[0] for c in COMMANDS)} else None
    return None


class _Parser(argparse.ArgumentParser):
    """argparse quotes bad arguments back ("unrecognized arguments: ..."): redacted like the rest."""

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        from generator.tokens import redact

        super()._print_message(redact(message), file)


def _parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """llmpack's parser; with `chosen`, only that command is built (each command's parser costs a
    render about half a millisecond, argparse's messages being looked up in gettext's catalogues)."""
    parser = _Parser(prog="llmpack", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"llmpack {__version__}")
    parser.add_argument("-C", "--project", type=Path, default=Path("."), metavar="DIR",
                        help="project folder, or a folder below it (default: the current folder)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name, run, summary, description, adders in COMMANDS:
        if chosen not in (None, name):
            continue
        command = sub.add_parser(name, help=summary, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        for add in adders:
            add(command)
        command.set_defaults(run=run)
    if chosen in (None, "schemas"):
        _schemas_commands(sub.add_parser("schemas", help="the CRDs the schema check uses"))
    return parser


def _schemas_commands(schemas: argparse.ArgumentParser) -> None:
    schema_commands = schemas.add_subparsers(title="commands", metavar="COMMAND", dest="schemas_command",
                                             required=True)
    fetch = schema_commands.add_parser(
        "fetch", help="fetch the pinned CRDs into the cache now",
        description="Fetch the pinned CRDs of KServe releases (default: every release llmpack accepts) and of "
                    "Argo CD and Flux from the Go module proxy (GOPROXY; GitHub as fallback), check each file's "
                    "sha256 against llmpack's pins, and keep them in the cache, where render finds them. Renders "
                    "fetch what they need by themselves; this is for a machine about to go offline.")
    fetch.add_argument("--kserve-version", dest="kserve_versions", action="append", default=[], metavar="VERSION",
                       help="only this release, as in values (0.20, 0.15.0, ...; repeatable)")
    fetch.add_argument("--github-url", default=None, metavar="URL",
                       help="the raw file server for the fallback (default: https://raw.githubusercontent.com)")
    fetch.set_defaults(run=commands.fetch)


def env_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="environment: a folder under overlays/")


def several_envs(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--env", dest="envs", action="append", default=[], metavar="ENV",
                        help="environment: a folder under overlays/ (repeatable)")
    choice.add_argument("--all", action="store_true", help="every environment under overlays/")


def release_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--release", help="only this release (a file under overlays/ENV/releases/)")


def layer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--values", dest="files", action="append", type=Path, default=[], metavar="FILE",
                        help="extra values file, applied after the overlay (repeatable)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="set one value, e.g. --set workerSpec.size=2 (repeatable; the value is YAML; "
                             "escape dots in keys as \\.)")


def schema_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crd-dir", dest="crd_dirs", action="append", type=Path, default=[], metavar="DIR",
                        help="folder of CRD files: kserve/vX.Y.Z/*.yaml (plus argocd/, flux/) or the CRDs of your "
                             "cluster (`kubectl get crd -o yaml`); repeatable; also LLMPACK_CRD_DIR")
    parser.add_argument("--no-crd-check", action="store_true",
                        help="do not run kubeconform against the schemas (the render says so; make render never "
                             "does this)")
    parser.add_argument("--skip-kubeconform", dest="no_crd_check", action="store_true",
                        help=argparse.SUPPRESS)   # the flag's earlier name, which issues and scripts still use


def init_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", type=Path, default=None,
                        help="where to create the repository (default: the -C folder, else the current one)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")


def render_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdout", action="store_true",
                        help="print the bundle as one YAML stream instead of writing files")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def check_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", dest="envs", action="append", default=[],
                        help="environment to check (repeatable; default: every folder under overlays/)")


def diff_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default="HEAD", help="git ref to compare with (default: HEAD)")


def plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=("text", "json"), default="text",
                        help="text for people (default) or json for tools")


def explain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", nargs="?", default="", help="dotted key; empty for the whole values")


COMMANDS: tuple[tuple[str, Callable[[argparse.Namespace], int], str, str, tuple[Adder, ...]], ...] = (
    ("init", commands.init, "create a GitOps repository that renders with llmpack",
     "Write example overlays (dev; prod with one release), the values schema for editors "
     "(.llmpack/values.schema.json), a Makefile, a pre-commit hook, a GitHub Actions workflow and a .gitignore. "
     "Files that exist are left alone (the command then fails) unless --force.", (init_options,)),
    ("render", commands.render, "render an environment into rendered/ENV/",
     "Render every release of an environment, check the bundle, and replace rendered/ENV/ atomically. On any "
     "error nothing is written. A bundle equal to what is on disk writes no file.",
     (several_envs, layer_options, schema_options, render_options)),
    ("validate", commands.validate, "check an environment without writing",
     "Render an environment in memory and run every check, kubeconform included; write nothing. Exit 1 with "
     "one line per problem if the bundle would be refused.", (env_options, layer_options, schema_options)),
    ("check", commands.check, "fail if the committed rendered/ is stale or hand-edited",
     "Re-render every environment (or those given with --env) in memory and compare with rendered/. Exit 1 "
     "listing each file that is missing, stale (its values changed since it was rendered), hand-edited or extra; "
     "exit 0 when rendered/ is up to date. For CI and pre-commit.", (check_options, schema_options)),
    ("diff", commands.diff, "review a change to rendered/ENV as Markdown",
     "Compare rendered/ENV as committed at a git ref with a fresh render of the working tree. Prints Markdown "
     "for a pull request comment: objects added, removed and changed with the changed fields, risk labels "
     "(TP/PP, model revision, PVC shrink or storage class, GPU total, image), and the unified diff. Prints "
     "nothing when nothing changed.", (env_options, layer_options, diff_options)),
    ("plan", commands.plan, "will the model fit? sizes per release and the layouts that fit",
     "For each release: parameters, weights per GPU, KV cache per token per GPU, KV cache tokens that fit, "
     "full-length sequences at once, and the smallest TP x PP layouts that fit on the chosen GPU type and on "
     "the others, with the reason for each. -f and --set answer what-if questions. The estimates are "
     "documented in the README.", (env_options, release_option, layer_options, plan_options)),
    ("explain", commands.explain, "show which layer set a value",
     "Show the merged value of KEY (dotted, e.g. model.env or pvc.size) and every layer that set, merged or "
     "deleted it, in merge order.", (env_options, release_option, layer_options, explain_options)),
)
