"""Where things are: the project (a folder with overlays/), the chart and schema it renders with,
its environments, and the layers of each release.

A project is usually a platform team's GitOps repository with only `overlays/` (and `rendered/`):
it renders with the chart and schema shipped inside llmpack. A project with its own
`charts/kserve-multinode/` and `schemas/` (this repository) renders with those instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from generator import files as boundary
from generator.errors import CONTROL, FileError, LoadError, Location, UsageError, ValuesError
from generator.load import Layer, load_file, parse_set
from generator.merge import merge
from generator.names import is_label
from generator.secrets import holds_token, secret_problems

CHART = "charts/kserve-multinode"
SCHEMA = "schemas/values.schema.json"
EDITOR_SCHEMA = ".llmpack/values.schema.json"      # what `llmpack init` points the overlays' modelines at
ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")    # a plain folder name: never ".", ".." or a path
# Package data of an installed llmpack (pyproject.toml maps these folders into generator/data/).
_SHIPPED = {"chart": CHART, "schemas": "schemas", "scaffold": "scaffold"}


def shipped(name: str) -> Path:
    """A folder shipped with llmpack ("chart", "schemas", "scaffold"): package data of the installed
    wheel, or the folder of the source checkout that an editable install runs from. (The package data
    is found beside this module, as importlib.resources would find it, without importing that: it
    brings zipfile, tempfile and random to every render.)"""
    packaged = Path(__file__).parent / "data" / name
    if packaged.is_dir():
        return packaged
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
        here = boundary.resolved(start)
        if here is None or boundary.kind(here) != "folder":
            raise UsageError(f"-C {start}: no such folder")
        for folder in (here, *here.parents):
            if boundary.kind(folder / "overlays") == "folder":
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
        try:    # the links are kept: a values.yaml that is a link is named as such, not by its target
            return boundary.absolute(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def envs(self) -> list[str]:
        """The environments: the folders under overlays/ with a plain name (hidden ones are not)."""
        folder = self.root / self.overlays
        if boundary.kind(folder) != "folder":
            return []
        return [p.name for p in boundary.listing(folder, self.overlays)
                if ENV_NAME.fullmatch(p.name) and boundary.kind(p) == "folder"]


@dataclass(frozen=True)
class Extras:
    """Layers from the command line, applied to every release after the overlay files."""

    files: tuple[Path, ...] = ()
    sets: tuple[str, ...] = ()


NO_EXTRAS = Extras()


@dataclass(frozen=True)
class Release:
    """One model deployment of an environment: its name and its layers in merge order."""

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
    folder = _env_folder(project, env)
    defaults = load_file(project.defaults, f"{CHART}/values.yaml")   # the same name for llmpack's chart and a copy
    env_file = folder / "values.yaml"
    present = boundary.kind(env_file) != "missing" or boundary.is_link(env_file)   # a dangling link is an error
    base = [defaults] + ([load_file(env_file, project.show(env_file))] if present else [])
    tail = [load_file(p, _file_name(project, p)) for p in extras.files] + [parse_set(s) for s in extras.sets]
    files = _release_files(project, folder / "releases")
    if not files:
        if not present:
            raise UsageError(f"environment {env!r} has neither {project.show(env_file)} nor releases/*.yaml")
        single = merge([*base, *tail]).data.get("name")
        return [Release(str(single), (*base, *tail))]
    return [Release(p.stem, (*base, load_file(p, project.show(p)), *tail)) for p in files]


def _env_folder(project: Project, env: str) -> Path:
    """overlays/ENV, for an ENV that is a plain folder name (never ".", ".." or a path: rendered/ENV is
    replaced as a whole) and holds no token (it is written into the bundle)."""
    folder = project.root / project.overlays / env
    if holds_token(env):
        raise UsageError(f"--env {env!r}: the name holds a Hugging Face token; rename the folder (the name of an "
                         "environment is written into its bundle)")
    if not ENV_NAME.fullmatch(env):
        raise UsageError(f"--env {env!r}: an environment is a folder under {project.overlays}/ named with letters, "
                         f"digits, '.', '_' and '-', not starting with '.' (environments: {_known(project)})")
    if boundary.kind(folder) != "folder":
        raise UsageError(f"unknown environment {env!r}: no folder {project.show(folder)} "
                         f"(environments: {_known(project)})")
    return folder


def _known(project: Project) -> str:
    return ", ".join(project.envs()) or "none"


def _file_name(project: Project, path: Path) -> str:
    """How a -f file is named in messages and in the bundle's headers: never with a line break."""
    shown = project.show(path)
    if re.search(CONTROL, shown):
        raise UsageError(f"-f {shown!r}: the file name holds a control character or line break; rename the file")
    return shown


def _release_files(project: Project, release_dir: Path) -> list[Path]:
    found = boundary.kind(release_dir)
    if found == "missing":
        return []
    if found != "folder":
        raise FileError(Location(project.show(release_dir)), f"is a {found}, not a folder; releases/ holds one "
                        "RELEASE.yaml file per release")
    files = boundary.listing(release_dir, project.show(release_dir))
    for path in files:
        if path.suffix != ".yaml" or not is_label(path.stem):
            raise LoadError(Location(project.show(path)), "release files are named RELEASE.yaml with RELEASE "
                            "a DNS-1123 label (a-z, 0-9, '-'), e.g. llama3-70b.yaml")
    return files
