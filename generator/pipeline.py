"""The pipeline: load -> merge -> validate -> plan -> render -> check -> write.

`build` knows the order and nothing else; each stage lives in its own module (project.py
finds the layers, bundle.py and gitops.py frame the rendered objects, write.py writes).
"""

from __future__ import annotations

from dataclasses import dataclass

from generator import bundle
from generator.check import SchemaCheck, check_bundle, check_release
from generator.errors import CheckError, Location, Problem, UsageError, ValuesError
from generator.gitops import render_gitops
from generator.merge import Merged, merge
from generator.merge import explain as explain_layers
from generator.plan import Plan, plan
from generator.project import NO_EXTRAS, Extras, Project, Release, releases, select
from generator.render import Chart, RenderedFile, render
from generator.validate import validate
from generator.validation import Validation
from generator.write import write


@dataclass(frozen=True)
class Bundle:
    env: str
    plans: tuple[Plan, ...]
    files: tuple[RenderedFile, ...]
    validated: tuple[str, ...] = ()     # what the schema check validated against; empty: not run

    def texts(self) -> dict[str, str]:
        return {f.path: f.text for f in self.files}


@dataclass(frozen=True)
class Planned:
    release: Release
    merged: Merged
    plan: Plan


def build(project: Project, env: str, extras: Extras = NO_EXTRAS, schemas: SchemaCheck | None = None) -> Bundle:
    """Render every release of `env` in memory and check the whole bundle (with kubeconform when
    `schemas` is given). Raises with every problem found, before anything is written."""
    out, chart = f"{project.output}/{env}", Chart(project.chart_dir)
    planned = plan_all(project, env, releases(project, env, extras))
    files, findings = [], []
    with Validation(out, schemas) as validation:   # kubeconform validates while the next releases render
        for item in planned:    # one release at a time: the objects are checked, then only their text is kept
            own = render(chart, item.plan, bundle.release_header(env, item.plan.release,
                                                                 [layer.name for layer in item.release.layers],
                                                                 item.merged.data))
            findings += check_release(out, item.plan, own)
            validation.add(item.plan, own)
            files += [f.light() for f in own]
        plans = [item.plan for item in planned]
        files += _environment_files(chart, env, planned, files)
        findings += check_bundle(out, plans, files)
        more, validated = validation.finish(plans, files) if schemas and not findings else ([], [])
    if findings or more:
        raise CheckError([*findings, *more])
    return Bundle(env, tuple(plans), tuple(files), tuple(validated))


def plan_all(project: Project, env: str, found: list[Release], *, capacity_errors: bool = True) -> list[Planned]:
    """Merge, validate and plan every release; every problem of every release is reported at once."""
    planned, problems = [], []
    for release in found:
        try:
            planned.append(_planned(project, env, release, capacity_errors=capacity_errors))
        except ValuesError as err:
            problems += [p for p in err.problems if p not in problems]
    problems += _same_gitops(planned)
    if problems:
        raise ValuesError(problems, f"env {env}")
    return planned


def _planned(project: Project, env: str, release: Release, *, capacity_errors: bool) -> Planned:
    context = f"release {release.name} of env {env}"
    merged = merge(release.layers)
    validate(merged, project.schema, context)
    return Planned(release, merged, plan(merged, release.name, context, (project.root, project.chart_dir),
                                         capacity_errors=capacity_errors))


def _environment_files(chart: Chart, env: str, planned: list[Planned], files: list[RenderedFile]
                       ) -> list[RenderedFile]:
    kustomizations = bundle.kustomizations(env, files)
    if not planned:
        return kustomizations
    folders = [k.path.rpartition("/")[0] for k in kustomizations[:-1]]
    return [*kustomizations, *render_gitops(chart, env, planned[0].merged.data["gitops"], folders,
                                            [item.plan.namespace for item in planned])]


def _same_gitops(planned: list[Planned]) -> list[Problem]:
    """GitOps settings belong to the environment: every release must have the same."""
    problems = []
    for item in planned[1:]:
        if item.merged.data.get("gitops") != planned[0].merged.data.get("gitops"):
            problems.append(Problem(item.merged.locate(("gitops",)), ("gitops",),
                                    f"release {item.release.name} has other gitops settings than release "
                                    f"{planned[0].release.name}; gitops belongs to the environment: set it in "
                                    "the environment's values.yaml"))
    return problems


def render_env(project: Project, env: str, extras: Extras = NO_EXTRAS,
               schemas: SchemaCheck | None = None) -> tuple[Bundle, bool]:
    """Build and write rendered/ENV/; returns the bundle and whether any file changed."""
    built = build(project, env, extras, schemas)
    changed = write(project.root / project.output, env, built.texts(), project.root / ".cache" / "llmpack" / "staging")
    return built, changed


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
