"""`llmpack init`: a new GitOps repository that renders with the installed llmpack.

It writes example overlays (dev, and prod with one release), the values schema for editors
(`.llmpack/values.schema.json`, which the overlays' first lines point at), a Makefile, a
pre-commit hook, a GitHub Actions workflow and a .gitignore, from llmpack's `scaffold/` folder.
Existing files are never overwritten unless asked.
"""

from __future__ import annotations

from pathlib import Path

from generator import __version__
from generator import files as boundary
from generator.errors import UsageError
from generator.project import EDITOR_SCHEMA, Project, shipped


def files() -> dict[str, bytes]:
    """What `init` writes: relative path -> content."""
    root = shipped("scaffold")
    found = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    found = {path: text.replace(b"@LLMPACK_VERSION@", __version__.encode()) for path, text in found.items()}
    found[EDITOR_SCHEMA] = (shipped("schemas") / "values.schema.json").read_bytes()
    return found


def init(target: Path, *, force: bool = False) -> list[str]:
    """Scaffold `target`; returns the paths written. Refuses to overwrite unless `force`."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is not a folder")
    wanted = files()
    taken = sorted(path for path in wanted if (target / path).exists())
    if taken and not force:
        raise UsageError(f"{target} already has {', '.join(taken)}: nothing was written "
                         "(--force overwrites them)")
    for path, content in wanted.items():
        write_file(target / path, content)
    return sorted(wanted)


def refresh_editor_schema(project: Project) -> bool:
    """Keep `.llmpack/values.schema.json` equal to the schema this llmpack validates with, in a
    project that renders with llmpack's chart and has the file. Returns whether it changed."""
    path = project.root / EDITOR_SCHEMA
    if project.own_chart or boundary.kind(path) != "file":
        return False
    current = boundary.read_bytes(project.schema, str(project.schema), limit=boundary.MiB * 16, what="schema")
    if boundary.read_bytes(path, EDITOR_SCHEMA, limit=boundary.MiB * 16, what="schema") == current:
        return False
    write_file(path, current)
    return True


def write_file(path: Path, content: bytes) -> None:
    """Write a whole file or nothing: a temporary file beside it, renamed into place."""
    boundary.replace_file(path, str(path), content)
