"""What each command does and prints (cli.py parses the arguments and maps errors to exit codes).

The pipeline is imported inside each command, so `llmpack --help` starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generator.check import SchemaCheck
    from generator.crds import SchemaSources
    from generator.pipeline import Bundle
    from generator.project import Extras, Project


def say(message: str) -> None:
    """Progress for people (fetching, building a tool): on stderr, so --stdout stays a clean stream."""
    print(f"llmpack: {message}", file=sys.stderr, flush=True)


def _project(args: argparse.Namespace) -> Project:
    from generator.project import Project

    return Project.find(args.project)


def _extras(args: argparse.Namespace) -> Extras:
    from generator.project import Extras

    return Extras(tuple(args.files), tuple(args.sets))


def _sources(args: argparse.Namespace) -> SchemaSources:
    from generator.crds import GITHUB_RAW, SchemaSources, default_cache, go_proxies

    from_env = [Path(p) for p in os.environ.get("LLMPACK_CRD_DIR", "").split(os.pathsep) if p]
    folders = tuple(p.resolve() for p in [*getattr(args, "crd_dirs", []), *from_env])
    return SchemaSources(folders, default_cache(), go_proxies(), getattr(args, "github_url", None) or GITHUB_RAW, say)


def _schema_check(args: argparse.Namespace, project: Project) -> SchemaCheck | None:
    from generator.check import SchemaCheck

    if args.no_crd_check:
        return None
    return SchemaCheck(_sources(args), (project.root, Path(__file__).resolve().parent.parent))


def _validated(bundle: Bundle) -> list[str]:
    if not bundle.validated:
        return ["  not validated against the Kubernetes and CRD schemas (--no-crd-check)"]
    return [f"  validated {line}" for line in bundle.validated]


def init(args: argparse.Namespace) -> int:
    from generator.scaffold import init as scaffold

    target = (args.folder or args.project).resolve()
    written = scaffold(target, force=args.force)
    print(f"created an llmpack project in {target}:")
    for path in written:
        print(f"  {path}")
    print("next: edit overlays/, then `llmpack render --env dev` (or `make render ENV=dev`) and commit rendered/")
    return 0


def report(bundle: Bundle) -> list[str]:
    """What a render tells the user: the topology of each release and how it was derived."""
    lines = []
    for p in bundle.plans:
        lines.append(f"{p.release}: {p.name} in {p.namespace}, KServe {p.kserve.version} ({p.target}): "
                     f"{p.pipeline_parallel} pod(s) x {p.tensor_parallel} GPU = {p.total_gpus} {p.pods.gpu_resource}")
        lines += [f"  - {note}" for note in p.notes]
    return lines


def render(args: argparse.Namespace) -> int:
    from generator.pipeline import build, render_env
    from generator.scaffold import refresh_editor_schema

    project = _project(args)
    extras, schemas = _extras(args), _schema_check(args, project)
    envs = project.envs() if args.all else args.envs
    if args.stdout:
        for env in envs:
            bundle = build(project, env, extras, schemas)
            docs = [f"# Source: {project.output}/{env}/{f.path}\n{f.text}" for f in bundle.files if f.key]
            sys.stdout.write("---\n".join(docs))
            for line in _validated(bundle):
                print(line.strip(), file=sys.stderr)
        return 0
    for env in envs:   # each environment is written whole or not at all
        bundle, changed = render_env(project, env, extras, schemas)
        if not args.quiet:
            print("\n".join([*report(bundle), *_validated(bundle)]))
            where, count = f"{project.output}/{env}", len(bundle.files)
            print(f"wrote {where}/ ({count} files)" if changed else f"{where}/ is up to date ({count} files)")
    if refresh_editor_schema(project) and not args.quiet:
        print(".llmpack/values.schema.json updated to this llmpack's schema (for editors)")
    return 0


def validate(args: argparse.Namespace) -> int:
    from generator.pipeline import build

    project = _project(args)
    bundle = build(project, args.env, _extras(args), _schema_check(args, project))
    objects = sum(1 for f in bundle.files if f.key is not None)
    print(f"{project.output}/{args.env}: {objects} objects in {len(bundle.plans)} release(s) are valid")
    print("\n".join(_validated(bundle)))
    return 0


def fetch(args: argparse.Namespace) -> int:
    from generator.crds import GITOPS_CRDS, fetch_all
    from generator.releases import RELEASES

    unknown = [v for v in args.kserve_versions if v not in RELEASES]
    if unknown:
        from generator.errors import UsageError

        raise UsageError(f"--kserve-version {unknown[0]}: llmpack knows {', '.join(RELEASES)}")
    chosen = [RELEASES[v].crds for v in args.kserve_versions] or \
        [*(r.crds for r in RELEASES.values()), *GITOPS_CRDS]
    failed = 0
    for pinned, result in fetch_all(_sources(args), chosen):
        if isinstance(result, Exception):
            failed += 1
            print(f"FAILED {pinned.name}: {result}", file=sys.stderr)
        else:
            print(f"ok     {pinned.name}: {result.files[0].parent}")
    return 1 if failed else 0


def check(args: argparse.Namespace) -> int:
    from generator.pipeline import build
    from generator.write import stale_files

    project = _project(args)
    envs = args.envs or project.envs()
    schemas = _schema_check(args, project)
    found = [item for env in envs
             for item in stale_files(project.root / project.output, env, build(project, env, schemas=schemas).texts())]
    output = project.root / project.output
    if not args.envs and output.is_dir():
        found += [("orphan", f"{project.output}/{p.name}/") for p in sorted(output.iterdir())
                  if p.is_dir() and not p.name.startswith(".") and p.name not in set(envs)]
    if not found:
        how = "and valid" if schemas is not None else "(schemas not checked: --no-crd-check)"
        print(f"{project.output}/ is up to date {how} ({len(envs)} environment(s))")
        return 0
    print(f"{project.output}/ is out of date ({len(found)} file(s)); run `llmpack render` and commit:",
          file=sys.stderr)
    for reason, path in found:
        print(f"  {reason:<12} {path}", file=sys.stderr)
    return 1


def diff(args: argparse.Namespace) -> int:
    from generator.diff import Side, files_at, markdown
    from generator.pipeline import build

    project = _project(args)
    folder = f"{project.output}/{args.env}"
    bundle = build(project, args.env, _extras(args))
    old = Side.of(files_at(project.root, args.base, folder))
    sys.stdout.write(markdown(args.env, args.base, old, Side.of(bundle.texts()), folder))
    return 0


def plan(args: argparse.Namespace) -> int:
    from generator.pipeline import capacity_plans
    from generator.plan.sizing import layouts_report

    project = _project(args)
    for index, planned in enumerate(capacity_plans(project, args.env, args.release, _extras(args))):
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


def explain(args: argparse.Namespace) -> int:
    from generator.errors import json_pointer
    from generator.pipeline import explain as explain_key

    project = _project(args)
    path = [p for p in args.key.strip(".").split(".") if p]
    release, merged, steps = explain_key(project, args.env, args.key, args.release, _extras(args))
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
