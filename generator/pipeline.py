"""The pipeline: load -> merge -> validate -> plan -> render -> check -> write.

`build` knows the order and nothing else; each stage lives in its own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator import __version__
from generator.check import SchemaCheck, check_bundle, check_release
from generator.errors import CheckError, Finding, LoadError, Location, Problem, UsageError, ValuesError
from generator.gitops import PHASES, render_gitops
from generator.load import Layer, load_file, parse_set
from generator.merge import Merged, merge
from generator.plan import DNS_LABEL, Plan, plan, values_digest
from generator.render import Chart, RenderedFile, render
from generator.validate import secret_problems, validate
from generator.write import write


@dataclass(frozen=True)
class Project:
    """Where things are; all display paths are relative to `root`."""

    root: Path
    chart_dir: str = "charts/kserve-multinode"
    schema: str = "schemas/values.schema.json"
    overlays: str = "overlays"
    output: str = "rendered"

    @classmethod
    def at(cls, root: Path) -> Project:
        """The project in `root`; a folder with only overlays/ uses the chart and schema shipped with llmpack."""
        project = cls(root.resolve())
        if (project.root / project.chart_dir).is_dir():
            return project
        shipped = Path(__file__).resolve().parent.parent
        return cls(project.root, chart_dir=str(shipped / cls.chart_dir), schema=str(shipped / cls.schema))

    @property
    def chart(self) -> Chart:
        return Chart(self.root / self.chart_dir)

    def show(self, path: Path) -> str:
        """A path as users should read it: relative to the project when inside it."""
        absolute = path if path.is_absolute() else Path.cwd() / path
        try:
            return absolute.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def envs(self) -> list[str]:
        folder = self.root / self.overlays
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@dataclass(frozen=True)
class Extras:
    """Layers from the command line, applied to every release after the overlay files."""

    files: tuple[Path, ...] = ()
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Release:
    name: str
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class Bundle:
    env: str
    plans: tuple[Plan, ...]
    files: tuple[RenderedFile, ...]

    def texts(self) -> dict[str, str]:
        return {f.path: f.text for f in self.files}


def releases(project: Project, env: str, extras: Extras = Extras()) -> list[Release]:
    """The releases of an environment, each with its layers in merge order. Values that hold a
    secret stop everything here, so that no later message or output can quote them."""
    found = _releases(project, env, extras)
    layers = list({id(layer): layer for release in found for layer in release.layers}.values())
    leaks = secret_problems(layers)
    if leaks:
        raise ValuesError(leaks, f"env {env}")
    return found


def _releases(project: Project, env: str, extras: Extras) -> list[Release]:
    folder = project.root / project.overlays / env
    if not env or "/" in env or not folder.is_dir():
        known = ", ".join(project.envs()) or "none"
        raise UsageError(f"unknown environment {env!r}: no folder {project.show(folder)} "
                         f"(environments: {known})")
    defaults = load_file(project.chart.defaults, project.show(project.chart.defaults))
    env_file = folder / "values.yaml"
    base = [defaults] + ([load_file(env_file, project.show(env_file))] if env_file.is_file() else [])
    tail = [load_file(p, project.show(p)) for p in extras.files] + [parse_set(s) for s in extras.sets]
    release_dir = folder / "releases"
    files = sorted(release_dir.iterdir()) if release_dir.is_dir() else []
    for path in files:
        if path.suffix != ".yaml" or not DNS_LABEL.fullmatch(path.stem) or len(path.stem) > 63:
            raise LoadError(Location(project.show(path)), "release files are named RELEASE.yaml with RELEASE "
                            "a DNS-1123 label (a-z, 0-9, '-'), e.g. llama3-70b.yaml")
    if not files:
        if not env_file.is_file():
            raise UsageError(f"environment {env!r} has neither {project.show(env_file)} nor releases/*.yaml")
        single = merge([*base, *tail]).data.get("name")
        return [Release(str(single), (*base, *tail))]
    return [Release(p.stem, (*base, load_file(p, project.show(p)), *tail)) for p in files]


def build(project: Project, env: str, extras: Extras = Extras(), schemas: SchemaCheck | None = None) -> Bundle:
    """Render every release of `env` in memory and check the whole bundle (with kubeconform when
    `schemas` is given)."""
    plans: list[Plan] = []
    files: list[RenderedFile] = []
    problems: list[Problem] = []
    findings: list[Finding] = []
    gitops: list[tuple[Merged, Release]] = []
    found = releases(project, env, extras)
    for release in found:
        try:
            merged, planned = _planned(project, env, release)
        except ValuesError as err:
            problems += [p for p in err.problems if p not in problems]
            continue
        plans.append(planned)
        gitops.append((merged, release))
        own = render(project.chart, merged.data, planned, _header(planned, merged, release, env))
        findings += check_release(f"{project.output}/{env}", planned, own)
        files += [f.light() for f in own]
    problems += _same_gitops(gitops)
    if problems:
        raise ValuesError(problems, f"env {env}")
    kustomizations = _kustomizations(env, files)
    folders = [k.path.rpartition("/")[0] for k in kustomizations[:-1]]
    files += kustomizations
    if gitops:
        files += render_gitops(project.chart, env, gitops[0][0].data["gitops"], folders,
                               [p.namespace for p in plans])
    findings += check_bundle(f"{project.output}/{env}", plans, files, schemas)
    if findings:
        raise CheckError(findings)
    return Bundle(env, tuple(plans), tuple(files))


def render_env(project: Project, env: str, extras: Extras = Extras(),
               schemas: SchemaCheck | None = None) -> tuple[Bundle, bool]:
    """Build and write rendered/ENV/; returns the bundle and whether any file changed."""
    bundle = build(project, env, extras, schemas)
    changed = write(project.root / project.output, env, bundle.texts(), project.root / ".cache" / "llmpack" / "staging")
    return bundle, changed


def stale_files(project: Project, bundle: Bundle) -> list[tuple[str, str]]:
    """How rendered/ENV on disk differs from `bundle`: (reason, path) with reason one of
    missing, stale (the values changed since it was rendered), hand-edited, extra."""
    folder = project.root / project.output / bundle.env
    wanted = bundle.texts()
    present = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()} \
        if folder.is_dir() else {}
    found = []
    for path in sorted(set(wanted) | set(present)):
        shown = f"{project.output}/{bundle.env}/{path}"
        if path not in present:
            found.append(("missing", shown))
        elif path not in wanted:
            found.append(("extra", shown))
        else:
            text = present[path].read_text(encoding="utf-8", errors="replace")
            if text != wanted[path]:
                same_values = _digest_line(text) is not None and _digest_line(text) == _digest_line(wanted[path])
                found.append(("hand-edited" if same_values else "stale", shown))
    return found


def _digest_line(text: str) -> str | None:
    return next((line for line in text.splitlines()[:4] if line.startswith("# values sha256:")), None)


def _header(planned: Plan, merged: Merged, release: Release, env: str) -> str:
    sources = " < ".join(layer.name for layer in release.layers)
    return (f"# Generated by llmpack {__version__}; do not edit. Regenerate: make render ENV={env}\n"
            f"# release {planned.release}: {sources}\n"
            f"# values sha256:{values_digest(merged.data)}\n")


def _same_gitops(releases: list[tuple[Merged, Release]]) -> list[Problem]:
    """GitOps settings belong to the environment: every release must have the same."""
    if not releases:
        return []
    first, first_release = releases[0]
    problems = []
    for merged, release in releases[1:]:
        if merged.data.get("gitops") != first.data.get("gitops"):
            problems.append(Problem(merged.locate(("gitops",)), ("gitops",),
                                    f"release {release.name} has other gitops settings than release "
                                    f"{first_release.name}; gitops belongs to the environment: set it in the "
                                    "environment's values.yaml"))
    return problems


def _kustomizations(env: str, files: Sequence[RenderedFile]) -> list[RenderedFile]:
    """One kustomization.yaml per phase folder (what Flux applies, in order) and one for the
    environment listing the phase folders (what Argo CD and `kustomize build` read)."""
    from generator import emit

    def kustomization(path: str, resources: list[str]) -> RenderedFile:
        obj = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
        header = f"# Generated by llmpack {__version__}; do not edit. Regenerate: make render ENV={env}\n"
        return RenderedFile(path, header + emit.dump(obj))

    folders: dict[str, list[str]] = {}
    for f in files:
        if f.key is not None:
            folder, _, name = f.path.rpartition("/")
            folders.setdefault(folder, []).append(name)
    ordered = sorted(folders, key=lambda folder: (folder.split("/")[0], _phase_rank(folder)))
    return [*(kustomization(f"{folder}/kustomization.yaml", sorted(folders[folder])) for folder in ordered),
            kustomization("kustomization.yaml", ordered)]


def _phase_rank(folder: str) -> int:
    phase = folder.rpartition("/")[2]
    return PHASES.index(phase) if phase in PHASES else len(PHASES)


def report(bundle: Bundle) -> list[str]:
    """What a render tells the user: the topology of each release and how it was derived."""
    lines = []
    for p in bundle.plans:
        lines.append(f"{p.release}: {p.name} in {p.namespace}, KServe {p.kserve.version} ({p.target}): "
                     f"{p.pipeline_parallel} pod(s) x {p.tensor_parallel} GPU = {p.total_gpus} {p.gpu_resource}")
        lines += [f"  - {note}" for note in p.notes]
    return lines


def _planned(project: Project, env: str, release: Release, capacity_errors: bool = True) -> tuple[Merged, Plan]:
    """Merge, validate and plan one release."""
    context = f"release {release.name} of env {env}"
    merged = merge(release.layers)
    validate(merged, project.root / project.schema, context)
    return merged, plan(merged, release.name, context, (project.root, project.chart.root), capacity_errors)


def _select(found: list[Release], env: str, release: str | None) -> list[Release]:
    """The release named by --release, or all of them."""
    if release is None:
        return found
    chosen = [r for r in found if r.name == release]
    if not chosen:
        raise UsageError(f"env {env} has no release {release!r}")
    return chosen


def capacity_plans(project: Project, env: str, release: str | None, extras: Extras = Extras()) -> list[Plan]:
    """The plans of an environment with capacity errors kept as notes: `llmpack plan` shows them."""
    return [_planned(project, env, chosen, capacity_errors=False)[1]
            for chosen in _select(releases(project, env, extras), env, release)]


def explain(project: Project, env: str, key: str, release: str | None, extras: Extras = Extras()
            ) -> tuple[Release, Merged, list[tuple[Location, str, object]]]:
    from generator.merge import explain as explain_layers

    found = _select(releases(project, env, extras), env, release)
    if len(found) > 1:
        names = ", ".join(r.name for r in found)
        raise UsageError(f"env {env} has several releases ({names}); choose one with --release")
    chosen = found[0]
    path = [int(p) if p.isdigit() else p for p in key.strip(".").split(".")] if key else []
    return chosen, merge(chosen.layers), explain_layers(chosen.layers, path)
