"""The no-op render between commands.render and stamp.py: what names a render's stamp, what else
the render looks at besides the files it reads, and what is not an input.

Importing this module imports the standard library only (the pipeline's modules are imported
when a stamp is kept), so a no-op render costs little more than the interpreter's start-up.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from generator import stamp

TYPE_CHECKING = False   # typing's, without importing typing on the start-up path (mypy reads it as True)

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from generator.check import SchemaCheck
    from generator.project import Project


def invocation(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as parsed, but what changes only what is printed (-q)."""
    return {key: value for key, value in sorted(vars(args).items()) if key not in ("run", "quiet")}


def answer(args: argparse.Namespace) -> tuple[list[str], str | None] | None:
    """What the last render with these arguments printed (its lines; the YAML stream of --stdout), if
    nothing it read changed since (and, without --stdout, rendered/ENV is as it left it); else None."""
    return stamp.answer(args.project, invocation(args))


def recorder(args: argparse.Namespace) -> stamp.Recorder:
    return stamp.Recorder(args.project, invocation(args))


def keep(recorder: stamp.Recorder, project: Project, schemas: SchemaCheck | None,
         outputs: Mapping[Path, Mapping[str, str]], lines: list[str], stdout: str | None = None) -> bool:
    """Keep the stamp of a render that wrote (or found equal) `outputs` (folder -> relative path -> sha256)
    and printed `lines` (and, for --stdout, `stdout`)."""
    from generator.digests import cache_root
    from generator.project import CHART, EDITOR_SCHEMA

    recorder.look(probes=[project.root / CHART, project.root / EDITOR_SCHEMA],
                  trees=schemas.sources.crd_dirs if schemas is not None else ())
    cache, own = cache_root(), project.root / ".cache"
    return stamp.save(recorder, project.root, outputs=outputs, lines=lines, stdout=stdout,
                      excluded=[cache / "schemas", cache / "verdicts", cache / "jinja", own,
                                project.root / project.output],
                      clean=[project.root / project.output, own / "llmpack" / "staging"])
