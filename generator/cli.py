"""The command line: parse arguments, call the pipeline, turn errors into exit codes.

Exit codes: 0 ok, 1 invalid input or bundle, 2 usage error. Only unexpected
exceptions (bugs) print a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from generator import __version__
from generator.errors import EXIT_USAGE, LlmpackError

if TYPE_CHECKING:
    from generator.check import SchemaCheck
    from generator.pipeline import Project
    from generator.schemas import SchemaSources

DESCRIPTION = """\
llmpack turns one small values file per environment into a validated, deterministic
bundle of Kubernetes manifests for multi-node, multi-GPU vLLM serving on KServe.

Values merge in this order, later wins:
  charts/kserve-multinode/values.yaml    chart defaults
  overlays/ENV/values.yaml               the environment
  overlays/ENV/releases/RELEASE.yaml     one file per model deployment (optional)
  -f FILE                                extra files, in the order given
  --set KEY=VALUE                        single values (dotted keys)
Maps merge, lists and scalars replace, null deletes a key.
"""

EPILOG = """\
Every render is checked before anything is written: KServe's admission rules, bundle-wide
rules, and the real kubeconform (strict) against core Kubernetes schemas and the CRDs of
the target KServe release (--crd-dir or LLMPACK_CRD_DIR; or `llmpack schemas fetch`).

examples:
  llmpack render --env prod                 write rendered/prod/
  llmpack render --env dev --set workerSpec.size=2 --stdout
  llmpack validate --env prod --crd-dir ~/crds
  llmpack check                             is rendered/ up to date? (CI, pre-commit)
  llmpack diff --env prod --base origin/main   review a change as Markdown
  llmpack explain --env prod --release llama3-70b model.env
  llmpack schemas fetch --kserve-version 0.20
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except LlmpackError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmpack", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"llmpack {__version__}")
    parser.add_argument("-C", "--project", type=Path, default=Path("."), metavar="DIR",
                        help="project folder holding charts/, schemas/, overlays/ (default: .)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    render = commands.add_parser(
        "render", help="render an environment into rendered/ENV/",
        description="Render every release of an environment, check the bundle, and replace rendered/ENV/ "
                    "atomically. On any error nothing is written. A bundle equal to what is on disk writes "
                    "no file.", formatter_class=argparse.RawDescriptionHelpFormatter)
    _env_options(render, several=True)
    _schema_options(render)
    render.add_argument("--stdout", action="store_true",
                        help="print the bundle as one YAML stream instead of writing files")
    render.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    render.set_defaults(run=_render)

    validate = commands.add_parser(
        "validate", help="check an environment without writing",
        description="Render an environment in memory and run every check, kubeconform included; write "
                    "nothing. Exit 1 with one line per problem if the bundle would be refused.")
    _env_options(validate)
    _schema_options(validate)
    validate.set_defaults(run=_validate)

    schemas = commands.add_parser("schemas", help="manage the schemas kubeconform uses")
    schema_commands = schemas.add_subparsers(title="commands", metavar="COMMAND", dest="schemas_command",
                                             required=True)
    fetch = schema_commands.add_parser(
        "fetch", help="download a KServe release's CRDs (needs network access)",
        description="Download the InferenceService, ServingRuntime and ClusterServingRuntime CRDs of a KServe "
                    "release from GitHub, check them against digests pinned in llmpack, and store them in the "
                    "cache (.cache/llmpack/crds), where render and validate find them.")
    fetch.add_argument("--kserve-version", required=True, help="release as in values, e.g. 0.20 or 0.15")
    fetch.add_argument("--base-url", default=None,
                       help="where tags live (default: https://raw.githubusercontent.com/kserve/kserve)")
    fetch.set_defaults(run=_fetch)

    check = commands.add_parser(
        "check", help="fail if the committed rendered/ is stale or hand-edited",
        description="Re-render every environment (or those given with --env) in memory and compare with "
                    "rendered/. Exit 1 listing each file that is missing, stale (its values changed since it "
                    "was rendered), hand-edited or extra; exit 0 when rendered/ is up to date. For CI and "
                    "pre-commit.")
    check.add_argument("--env", dest="envs", action="append", default=[],
                       help="environment to check (repeatable; default: every folder under overlays/)")
    _schema_options(check)
    check.set_defaults(run=_check)

    diff = commands.add_parser(
        "diff", help="review a change to rendered/ENV as Markdown",
        description="Compare rendered/ENV as committed at a git ref with a fresh render of the working tree. "
                    "Prints Markdown for a pull request comment: objects added, removed and changed with the "
                    "changed fields, risk labels (TP/PP, model revision, PVC shrink or storage class, GPU total, "
                    "image), and the unified diff. Prints nothing when nothing changed.")
    _env_options(diff)
    diff.add_argument("--base", default="HEAD", help="git ref to compare with (default: HEAD)")
    diff.set_defaults(run=_diff)

    plan = commands.add_parser(
        "plan", help="will the model fit? sizes per release and the smallest layouts",
        description="For each release: parameters, weights per GPU, KV cache per token per GPU, KV cache "
                    "tokens that fit, full-length sequences at once, and the smallest TP x PP layouts that fit on "
                    "the chosen GPU type and on the others, with the reason for each. Needs model.architecture "
                    "and gpu.type (or gpu.memory). The estimates are documented in the README.")
    plan.add_argument("--env", required=True, help="environment: a folder under overlays/")
    plan.add_argument("--release", help="only this release")
    plan.set_defaults(run=_plan)

    explain = commands.add_parser(
        "explain", help="show which layer set a value",
        description="Show the merged value of KEY (dotted, e.g. model.env or pvc.size) and every layer "
                    "that set, merged or deleted it, in merge order.")
    _env_options(explain)
    explain.add_argument("--release", help="release to explain (needed when the env has several)")
    explain.add_argument("key", nargs="?", default="", help="dotted key; empty for the whole values")
    explain.set_defaults(run=_explain)
    return parser


def _env_options(parser: argparse.ArgumentParser, several: bool = False) -> None:
    if several:
        choice = parser.add_mutually_exclusive_group(required=True)
        choice.add_argument("--env", dest="envs", action="append", default=[], metavar="ENV",
                            help="environment: a folder under overlays/ (repeatable)")
        choice.add_argument("--all", action="store_true", help="every environment under overlays/")
    else:
        parser.add_argument("--env", required=True, help="environment: a folder under overlays/")
    parser.add_argument("-f", "--values", dest="files", action="append", type=Path, default=[], metavar="FILE",
                        help="extra values file, applied after the overlay (repeatable)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="set one value, e.g. --set workerSpec.size=2 (repeatable; the value is YAML; "
                             "escape dots in keys as \\.)")


def _schema_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crd-dir", dest="crd_dirs", action="append", type=Path, default=[], metavar="DIR",
                        help="folder of CRD files: kserve/vX.Y.Z/*.yaml (plus others, e.g. Argo CD, Flux) or "
                             "the CRDs of your cluster (repeatable; also LLMPACK_CRD_DIR)")
    parser.add_argument("--skip-kubeconform", action="store_true",
                        help="skip the schema check (for quick local iterations only; make render never does)")


def _schema_check(args: argparse.Namespace, project: Project) -> SchemaCheck | None:
    from generator.check import SchemaCheck

    if args.skip_kubeconform:
        return None
    return SchemaCheck(_sources(args, project), (project.root, Path(__file__).resolve().parent.parent))


def _sources(args: argparse.Namespace, project: Project) -> SchemaSources:
    from generator.schemas import SchemaSources

    from_env = [Path(p) for p in os.environ.get("LLMPACK_CRD_DIR", "").split(os.pathsep) if p]
    cache = Path(os.environ.get("LLMPACK_CACHE_DIR") or project.root / ".cache" / "llmpack")
    return SchemaSources(tuple(p.resolve() for p in [*getattr(args, "crd_dirs", []), *from_env]), cache.resolve())


def _render(args: argparse.Namespace) -> int:
    from generator.pipeline import Extras, Project, build, render_env, report

    project = Project.at(args.project)
    extras = Extras(tuple(args.files), tuple(args.sets))
    schemas = _schema_check(args, project)
    envs = project.envs() if args.all else args.envs
    if args.stdout:
        for env in envs:
            bundle = build(project, env, extras, schemas)
            docs = [f"# Source: {project.output}/{env}/{f.path}\n{f.text}" for f in bundle.files if f.key]
            sys.stdout.write("---\n".join(docs))
        return 0
    for env in envs:   # each environment is written whole or not at all
        bundle, changed = render_env(project, env, extras, schemas)
        if not args.quiet:
            for line in report(bundle):
                print(line)
            where = f"{project.output}/{env}"
            count = len(bundle.files)
            print(f"wrote {where}/ ({count} files)" if changed else f"{where}/ is up to date ({count} files)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from generator.pipeline import Extras, Project, build

    project = Project.at(args.project)
    bundle = build(project, args.env, Extras(tuple(args.files), tuple(args.sets)), _schema_check(args, project))
    objects = sum(1 for f in bundle.files if f.key is not None)
    how = "bundle checks only (--skip-kubeconform)" if args.skip_kubeconform else "bundle checks and kubeconform"
    print(f"{project.output}/{args.env}: {objects} objects in {len(bundle.plans)} release(s) are valid ({how})")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from generator.pipeline import Project
    from generator.schemas import KSERVE_BASE_URL, fetch_kserve

    project = Project.at(args.project)
    target = fetch_kserve(_sources(args, project), args.kserve_version, args.base_url or KSERVE_BASE_URL)
    print(f"stored KServe CRDs in {project.show(target)} (digests verified)")
    return 0


def _check(args: argparse.Namespace) -> int:
    from generator.pipeline import Project, build, stale_files

    project = Project.at(args.project)
    envs = args.envs or project.envs()
    schemas = _schema_check(args, project)
    found = [item for env in envs for item in stale_files(project, build(project, env, schemas=schemas))]
    known = set(envs)
    output = project.root / project.output
    if not args.envs and output.is_dir():
        found += [("orphan", f"{project.output}/{p.name}/") for p in sorted(output.iterdir())
                  if p.is_dir() and not p.name.startswith(".") and p.name not in known]
    if not found:
        print(f"{project.output}/ is up to date ({len(envs)} environment(s))")
        return 0
    print(f"{project.output}/ is out of date ({len(found)} file(s)); run `make render` and commit:",
          file=sys.stderr)
    for reason, path in found:
        print(f"  {reason:<12} {path}", file=sys.stderr)
    return 1


def _diff(args: argparse.Namespace) -> int:
    from generator.diff import Side, files_at, markdown
    from generator.pipeline import Extras, Project, build

    project = Project.at(args.project)
    folder = f"{project.output}/{args.env}"
    bundle = build(project, args.env, Extras(tuple(args.files), tuple(args.sets)))
    old = Side.of(files_at(project.root, args.base, folder))
    sys.stdout.write(markdown(args.env, args.base, old, Side.of(bundle.texts()), folder))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from generator.pipeline import Project, capacity_plans
    from generator.sizing import layouts_report

    project = Project.at(args.project)
    for index, planned in enumerate(capacity_plans(project, args.env, args.release)):
        if index:
            print()
        layout = f"TP {planned.tensor_parallel} x PP {planned.pipeline_parallel} = {planned.total_gpus} GPUs"
        print(f"{planned.release}: {planned.marker.split('@')[0]}, {layout}")
        fit = planned.sizing
        if fit is None:
            print("  capacity not estimated: set model.architecture and gpu.type (or gpu.memory)")
            continue
        for label, value in fit.figures():
            print(f"  {label:<31} {value}")
        problems = fit.report.problems
        verdict = "; ".join(f"{p.severity}: {p.message}" for p in problems) if problems else "fits"
        print(f"  {'verdict':<31} {verdict}")
        for line in layouts_report(fit):
            print(f"  {line}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from generator.errors import json_pointer
    from generator.pipeline import Extras, Project, explain

    project = Project.at(args.project)
    path = [p for p in args.key.strip(".").split(".") if p]
    release, merged, steps = explain(project, args.env, args.key, args.release,
                                     Extras(tuple(args.files), tuple(args.sets)))
    node: object = merged.data
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    print(f"release {release.name}, {json_pointer(path)} = {json.dumps(node, sort_keys=True)}")
    for location, action, value in steps:
        shown = "" if action == "delete" else f" {json.dumps(value, sort_keys=True)}"
        print(f"  {location}: {action}{shown}")
    if not steps:
        print("  (no layer sets it)")
    return 0
