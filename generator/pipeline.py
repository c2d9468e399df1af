"""The pipeline: load -> merge -> validate -> plan -> render -> check -> write.

`build` knows the order and nothing else; each stage lives in its own module (project.py
finds the layers, bundle.py and gitops.py frame the rendered objects, write.py writes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from generator import bundle
from generator.check import SchemaCheck, check_bundle, check_release, no_tokens
from generator.errors import CheckError, Finding, Location, Problem, UsageError, ValuesError
from generator.gitops import render_gitops
from generator.load import Layer
from generator.merge import Merged, merge
from generator.merge import explain as explain_layers
from generator.plan import Plan, plan
from generator.project import NO_EXTRAS, Extras, Project, Release, releases, select
from generator.render import Chart, RenderedFile, render
from generator.validate import validate
from generator.validation import Validation
from generator.write import Writer


@dataclass(frozen=True)
class Bundle:
    """The files of an environment with their text (empty when `build` handed them to a sink), and the
    plans of its releases."""

    env: str
    plans: tuple[Plan, ...]
    files: tuple[RenderedFile, ...]
    validated: tuple[str, ...] = ()     # what the schema check validated against; empty: not run

    def texts(self) -> dict[str, str]:
        return {f.path: f.text for f in self.files}


@dataclass(frozen=True)
class Planned:
    release: Release
    plan: Plan
    values_digest: str              # of the merged values, for the files' headers
    gitops: Any                     # the release's gitops values (the environment's: checked equal)


@dataclass(frozen=True)
class Written:
    """What render_env did: the bundle (without texts), whether a file changed, each file's sha256."""

    bundle: Bundle
    changed: bool
    digests: dict[str, str]


Sink = Callable[[RenderedFile], None]


def build(project: Project, env: str, extras: Extras = NO_EXTRAS, schemas: SchemaCheck | None = None,
          sink: Sink | None = None) -> Bundle:
    """Render every release of `env` and check the whole bundle (with kubeconform when `schemas` is
    given). Raises with every problem found. Each file goes to `sink` as soon as its release is rendered
    and checked (render_env: into the staging folder), so a fleet is never held in memory; without a
    sink the bundle keeps the texts."""
    out, chart = f"{project.output}/{env}", Chart(project.chart_dir)
    planned, problems = list[Planned](), list[Problem]()
    kept, names, findings = [], [], []      # names: path and identity of every file, for check_bundle
    with Validation(out, schemas) as validation:   # kubeconform validates while the next releases render
        for item in _each_planned(project, env, releases(project, env, extras), problems):
            planned.append(item)
            if problems:     # values errors: the other releases are only planned, to report every problem
                continue
            own = render(chart, item.plan, bundle.release_header(env, item.plan.release,
                                                                 [layer.name for layer in item.release.layers],
                                                                 item.values_digest))
            findings += check_release(out, item.plan, own)
            validation.add(item.plan, own)
            names += [f.named() for f in own]
            kept += _handed(own, sink, findings)
        if problems:
            raise ValuesError(problems, f"env {env}")
        plans = [item.plan for item in planned]
        framing = _environment_files(chart, env, planned, names)
        findings += [*no_tokens(out, framing), *check_bundle(out, plans, [*names, *framing])]
        kept += _handed(framing, sink, findings)
        more, validated = validation.finish(plans, framing) if schemas and not findings else ([], [])
    if findings or more:
        raise CheckError([*findings, *more])
    return Bundle(env, tuple(plans), tuple(kept), tuple(validated))


def _handed(files: list[RenderedFile], sink: Sink | None, findings: list[Finding]) -> list[RenderedFile]:
    """The files to keep: all of them (without their parsed objects) when there is no sink; else none,
    each given to the sink (none once a check failed: the render will not be written)."""
    if sink is None:
        return [f.light() for f in files]
    for f in files if not findings else ():
        sink(f)
    return []


def plan_all(project: Project, env: str, found: list[Release], *, capacity_errors: bool = True) -> list[Planned]:
    """Merge, validate and plan every release; every problem of every release is reported at once."""
    problems: list[Problem] = []
    planned = list(_each_planned(project, env, found, problems, capacity_errors=capacity_errors))
    if problems:
        raise ValuesError(problems, f"env {env}")
    return planned


def _each_planned(project: Project, env: str, found: list[Release], problems: list[Problem], *,
                  capacity_errors: bool = True) -> Iterator[Planned]:
    """Each release merged, validated and planned, as it comes (build renders it before the next is
    planned, so kubeconform starts early); a release with problems adds them to `problems` instead."""
    first: Planned | None = None
    shared = _shared_layers(found)
    base = merge(shared) if shared else None
    for release in found:
        try:
            item = _planned(project, env, release, (shared, base), capacity_errors=capacity_errors, first=first)
        except ValuesError as err:
            problems += [p for p in err.problems if p not in problems]
            continue
        first = first or item
        yield item


def _shared_layers(found: list[Release]) -> tuple[Layer, ...]:
    """The layers every release of a fleet begins with (the chart's defaults, the environment's values):
    merged once, each release's own layers then onto a copy of that."""
    if len(found) < 2:
        return ()
    first, count = found[0].layers, 0
    while count < len(first) and all(len(r.layers) > count and r.layers[count] is first[count] for r in found):
        count += 1
    return first[:count]


def _planned(project: Project, env: str, release: Release, start: tuple[tuple[Layer, ...], Merged | None], *,
             capacity_errors: bool, first: Planned | None) -> Planned:
    """One release merged (from `start`: the layers all releases share and their merge), validated and
    planned; only what rendering needs is kept (a fleet's merged values and origins would fill memory)."""
    context = f"release {release.name} of env {env}"
    shared, base = start
    merged = merge(release.layers[len(shared):], base)
    validate(merged, project.schema, context)
    planned = plan(merged, release.name, context, (project.root, project.chart_dir), capacity_errors=capacity_errors)
    if first is not None and merged.data.get("gitops") != first.gitops:
        raise ValuesError([_other_gitops(merged, release, first)], context)
    return Planned(release, planned, bundle.values_digest(merged.data), merged.data.get("gitops"))


def _environment_files(chart: Chart, env: str, planned: list[Planned], files: list[RenderedFile]
                       ) -> list[RenderedFile]:
    kustomizations = bundle.kustomizations(env, files)
    if not planned:
        return kustomizations
    folders = [k.path.rpartition("/")[0] for k in kustomizations[:-1]]
    return [*kustomizations, *render_gitops(chart, env, planned[0].gitops, folders,
                                            [item.plan.namespace for item in planned])]


def _other_gitops(merged: Merged, release: Release, first: Planned) -> Problem:
    """GitOps settings belong to the environment: every release must have the same."""
    return Problem(merged.locate(("gitops",)), ("gitops",),
                   f"release {release.name} has other gitops settings than release {first.release.name}; gitops "
                   "belongs to the environment: set it in the environment's values.yaml")


def render_env(project: Project, env: str, extras: Extras = NO_EXTRAS,
               schemas: SchemaCheck | None = None) -> Written:
    """Build rendered/ENV/ and replace it whole (or leave it as it was: on any error, and when nothing
    changed). Each file is staged as soon as it is rendered: only names and digests stay in memory."""
    with Writer(project.root / project.output, env, project.root / ".cache" / "llmpack" / "staging") as writer:
        built = build(project, env, extras, schemas, sink=lambda f: writer.add(f.path, f.text))
        changed = writer.finish()
    return Written(built, changed, writer.digests)


def capacity_plans(project: Project, env: str, release: str | None, extras: Extras = NO_EXTRAS) -> list[Plan]:
    """The plans of an environment with capacity errors kept as notes: `llmpack plan` shows them."""
    chosen = select(releases(project, env, extras), env, release)
    return [item.plan for item in plan_all(project, env, chosen, capacity_errors=False)]


def explain(project: Project, env: str, key: str, release: str | None, extras: Extras = NO_EXTRAS
            ) -> tuple[Release, Merged, list[tuple[Location, str, object]]]:
    found = select(releases(project, env, extras), env, release)
    if len(found) > 1:
        names = ", ".join(r.name for r in found)
        raise UsageError(f"env {env} has several releases ({names}); choose one with --release")
    path = [int(p) if p.isdigit() else p for p in key.strip(".").split(".")] if key else []
    return found[0], merge(found[0].layers), explain_layers(found[0].layers, path)
