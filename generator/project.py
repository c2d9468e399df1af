"""Where things are: the project (a folder with overlays/), the chart and schema it renders with,
its environments, and the layers of each release.

A project is usually a platform team's GitOps repository with only `overlays/` (and `rendered/`):
it renders with the chart and schema shipped inside llmpack. A project with its own
`charts/kserve-multinode/` and `schemas/` (this repository) renders with those instead.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from generator.errors import LoadError, Location, UsageError, ValuesError
from generator.load import Layer, load_file, parse_set
from generator.merge import merge
from generator.names import is_label
from generator.secrets import secret_problems

CHART = "charts/kserve-multinode"
SCHEMA = "schemas/values.schema.json"
EDITOR_SCHEMA = ".llmpack/values.schema.json"      # what `llmpack init` points the overlays' modelines at
# Package data of an installed llmpack (pyproject.toml maps these folders into generator/data/).
_SHIPPED = {"chart": CHART, "schemas": "schemas", "scaffold": "scaffold"}


def shipped(name: str) -> Path:
    """A folder shipped with llmpack ("chart", "schemas", "scaffold"): package data of the installed
    wheel, or the folder of the source checkout that an editable install runs from."""
    packaged = importlib.resources.files("generator") / "data" / name
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / _SHIPPED[name]


@dataclass(frozen=True)
class Project:
    """A project folder and the chart and schema it renders with; display paths are relative to `root`."""

    root: Path
    chart_dir: Path
    schema: Path
    overlays: str = "overlays"
    output: str = "rendered"

    @classmethod
    def at(cls, root: Path) -> Project:
        """The project in `root`, with its own chart if it has one, else llmpack's."""
        root = root.resolve()
        if (root / CHART).is_dir():
            return cls(root, root / CHART, root / SCHEMA)
        return cls(root, shipped("chart"), shipped("schemas") / "values.schema.json")

    @classmethod
    def find(cls, start: Path) -> Project:
        """The project holding `start`: the nearest folder, `start` or above, with an overlays/ folder."""
        here = start.resolve()
        if not here.is_dir():
            raise UsageError(f"-C {start}: no such folder")
        for folder in (here, *here.parents):
            if (folder / "overlays").is_dir():
                return cls.at(folder)
        raise UsageError(f"no llmpack project at {here}: no overlays/ folder there or above it. "
                         "Create one with `llmpack init`, or name the project with -C DIR")

    @property
    def own_chart(self) -> bool:
        return self.chart_dir == self.root / CHART

    @property
    def defaults(self) -> Path:
        return self.chart_dir / "values.yaml"

    def show(self, path: Path) -> str:
        """A path as users should read it: relative to the project when inside it."""
        absolute = path if path.is_absolute() else Path.cwd() / path
        try:
            return absolute.resolve().relative_to(self.root).as_posix()
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


NO_EXTRAS = Extras()


@dataclass(frozen=True)
class Release:
    name: str
    layers: tuple[Layer, ...]


def releases(project: Project, env: str, extras: Extras = NO_EXTRAS) -> list[Release]:
    """The releases of an environment, each with its layers in merge order. Values that hold a
    secret stop everything here, so that no later message or output can quote them."""
    found = _releases(project, env, extras)
    layers = list({id(layer): layer for release in found for layer in release.layers}.values())
    leaks = secret_problems(layers)
    if leaks:
        raise ValuesError(leaks, f"env {env}")
    return found


def select(found: list[Release], env: str, release: str | None) -> list[Release]:
    """The release named by --release, or all of them."""
    if release is None:
        return found
    chosen = [r for r in found if r.name == release]
    if not chosen:
        known = ", ".join(r.name for r in found)
        raise UsageError(f"env {env} has no release {release!r} (releases: {known})")
    return chosen


def _releases(project: Project, env: str, extras: Extras) -> list[Release]:
    folder = project.root / project.overlays / env
    if not env or "/" in env or not folder.is_dir():
        known = ", ".join(project.envs()) or "none"
        raise UsageError(f"unknown environment {env!r}: no folder {project.show(folder)} "
                         f"(environments: {known})")
    defaults = load_file(project.defaults, f"{CHART}/values.yaml")   # the same name for llmpack's chart and a copy
    env_file = folder / "values.yaml"
    base = [defaults] + ([load_file(env_file, project.show(env_file))] if env_file.is_file() else [])
    tail = [load_file(p, project.show(p)) for p in extras.files] + [parse_set(s) for s in extras.sets]
    release_dir = folder / "releases"
    files = sorted(release_dir.iterdir()) if release_dir.is_dir() else []
    for path in files:
        if path.suffix != ".yaml" or not is_label(path.stem):
            raise LoadError(Location(project.show(path)), "release files are named RELEASE.yaml with RELEASE "
                            "a DNS-1123 label (a-z, 0-9, '-'), e.g. llama3-70b.yaml")
    if not files:
        if not env_file.is_file():
            raise UsageError(f"environment {env!r} has neither {project.show(env_file)} nor releases/*.yaml")
        single = merge([*base, *tail]).data.get("name")
        return [Release(str(single), (*base, *tail))]
    return [Release(p.stem, (*base, load_file(p, project.show(p)), *tail)) for p in files]
