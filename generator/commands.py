"""What each command does and prints (cli.py parses the arguments and maps errors to exit codes).

The pipeline is imported inside each command, so `llmpack --help` starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

TYPE_CHECKING = False   # typing's, without importing typing on the start-up path (mypy reads it as True)

if TYPE_CHECKING:
    from generator.capacity import Candidate
    from generator.check import SchemaCheck
    from generator.crds import SchemaSources
    from generator.pipeline import Bundle
    from generator.plan import Plan
    from generator.project import Extras, Project


def say(message: str) -> None:
    """Progress for people (fetching, building a tool): on stderr, so --stdout stays a clean stream."""
    from generator.tokens import redact

    print(f"llmpack: {redact(message)}", file=sys.stderr, flush=True)


def _project(args: argparse.Namespace) -> Project:
    from generator.project import Project

    return Project.find(args.project)


def _extras(args: argparse.Namespace) -> Extras:
    from generator.project import Extras

    return Extras(tuple(args.files), tuple(args.sets))


def _sources(args: argparse.Namespace) -> SchemaSources:
    from generator.crds import GITHUB_RAW, SchemaSources, default_cache, go_proxies
    from generator.files import environ, kind, resolved

    given = [*(("--crd-dir", p) for p in getattr(args, "crd_dirs", [])),
             *(("LLMPACK_CRD_DIR", Path(p)) for p in environ("LLMPACK_CRD_DIR").split(os.pathsep) if p)]
    for where, path in given:      # a mistyped folder would be skipped and the CRDs taken from elsewhere
        found = kind(path)
        if found != "folder":
            from generator.errors import UsageError

            what = {"missing": "no such folder", "unreadable": "cannot be read"}.get(found, f"is a {found}")
            raise UsageError(f"{where} {path}: {what}; give a folder of CRD files (kserve/vX.Y.Z/*.yaml, or "
                             "`kubectl get crd -o yaml` of a cluster)")
    folders = tuple(resolved(p) or p.absolute() for _, p in given)
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
    from generator.files import resolved
    from generator.scaffold import init as scaffold

    target = resolved(args.folder or args.project) or (args.folder or args.project).absolute()
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
    from generator import noop  # standard library only: a no-op render stops here

    kept = noop.answer(args)
    if kept is not None:
        _print_again(args, *kept)
        return 0
    from generator.pipeline import build, render_env
    from generator.scaffold import refresh_editor_schema

    said: list[str] = []
    streams: list[str] = []       # the YAML of --stdout, per environment
    outputs: dict[Path, dict[str, str]] = {}
    with noop.recorder(args) as recorder:
        project = _project(args)
        extras, schemas = _extras(args), _schema_check(args, project)
        envs = project.envs() if args.all else args.envs
        for env in envs:   # each environment is written whole or not at all
            if args.stdout:
                docs, lines = _stream(build(project, env, extras, schemas), project.output, first=not streams)
                sys.stdout.write(docs)
                if not args.quiet:   # the report goes to stderr: --stdout stays a clean stream of YAML
                    print("\n".join(lines), file=sys.stderr)
                streams.append(docs)
                said += lines
                continue
            written = render_env(project, env, extras, schemas)
            lines, where = [*report(written.bundle), *_validated(written.bundle)], f"{project.output}/{env}"
            count = len(written.digests)
            if not args.quiet:
                print("\n".join(lines))
                done = f"wrote {where}/" if written.changed else f"{where}/ is up to date"
                print(f"{done} ({count} files)")
            said += [*lines, f"{where}/ is up to date ({count} files)"]
            outputs[project.root / project.output / env] = written.digests
        if not args.stdout and refresh_editor_schema(project) and not args.quiet:
            print(".llmpack/values.schema.json updated to this llmpack's schema (for editors)")
    noop.keep(recorder, project, schemas, outputs, said, "".join(streams) if args.stdout else None)
    return 0


def _stream(bundle: Bundle, output: str, *, first: bool) -> tuple[str, list[str]]:
    """A bundle as --stdout prints it: its objects as one YAML stream, and its report."""
    docs = "---\n".join(f"# Source: {output}/{bundle.env}/{f.path}\n{f.text}" for f in bundle.files if f.key)
    return ("" if first else "---\n") + docs, [*report(bundle), *_validated(bundle)]


def _print_again(args: argparse.Namespace, lines: list[str], stream: str | None) -> None:
    """What a render printed, as its stamp kept it (the YAML on stdout and the report on stderr for --stdout)."""
    if stream is not None:
        sys.stdout.write(stream)
    if lines and not args.quiet:
        print("\n".join(lines), file=sys.stderr if args.stdout else sys.stdout)


def validate(args: argparse.Namespace) -> int:
    from generator.pipeline import build

    project = _project(args)
    bundle = build(project, args.env, _extras(args), _schema_check(args, project))
    objects = sum(1 for f in bundle.files if f.key is not None)
    print(f"{project.output}/{args.env}: {objects} objects in {len(bundle.plans)} release(s) are valid")
    print("\n".join([*report(bundle), *_validated(bundle)]))
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

    planned = capacity_plans(_project(args), args.env, args.release, _extras(args))
    if args.output == "json":
        print(json.dumps({"releases": [_plan_json(p) for p in planned]}, indent=2, sort_keys=True))
        return 0
    print("\n\n".join("\n".join(_plan_text(p)) for p in planned))
    return 0


def _verdict(planned: Plan) -> list[str]:
    """What a render would refuse, then the capacity warnings; empty: it fits."""
    warnings = [p.message for p in planned.sizing.report.warnings] if planned.sizing else []
    return [*(f"error: {m}" for m in planned.refused), *(f"warning: {m}" for m in warnings)]


def _plan_text(planned: Plan) -> list[str]:
    from generator.plan.sizing import layouts_report

    layout = f"TP {planned.tensor_parallel} x PP {planned.pipeline_parallel} = {planned.total_gpus} GPUs"
    lines = [f"{planned.release}: {planned.model_id}, {layout}"]
    fit = planned.sizing
    if fit is None:
        why = [n for n in planned.notes if n.startswith(("capacity not checked", "unknown model"))]
        return [*lines, *(f"  {n}" for n in [*why, *_verdict(planned)]), f"  {'verdict':<31} not estimated"]
    lines += [f"  {label:<31} {value}" for label, value in fit.figures()]
    verdict = "; ".join(_verdict(planned)) or "fits"
    return [*lines, f"  {'verdict':<31} {verdict}", *(f"  {line}" for line in layouts_report(fit))]


def _plan_json(planned: Plan) -> dict[str, object]:
    from generator.plan.sizing import layouts

    found: dict[str, object] = {
        "release": planned.release, "model": planned.model_id, "tensorParallelSize": planned.tensor_parallel,
        "pipelineParallelSize": planned.pipeline_parallel, "gpus": planned.total_gpus, "notes": list(planned.notes),
        "estimated": planned.sizing is not None, "refused": list(planned.refused)}
    fit = planned.sizing
    if fit is None:
        return {**found, "fits": None}
    options = layouts(fit)
    return {**found, "gpu": fit.gpu.name, "fits": not planned.refused, "figures": dict(fit.figures()),
            "warnings": [p.message for p in fit.report.warnings],
            "layouts": [_candidate_json(c) for c in options.chosen],
            "otherGpus": {gpu.name: _candidate_json(best) if best else None for gpu, best in options.others}}


def _candidate_json(candidate: Candidate) -> dict[str, object]:
    return {"tensorParallelSize": candidate.layout.tensor_parallel,
            "pipelineParallelSize": candidate.layout.pipeline_parallel, "gpus": candidate.layout.gpus,
            "fits": candidate.fits, "reason": candidate.reason}


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
