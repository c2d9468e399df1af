"""The no-op render between commands.render and stamp.py: what names a render's stamp, what else
the render looks at besides the files it reads, and what is not an input.

Importing this module imports the standard library only (the pipeline's modules are imported
when a stamp is kept), so a no-op render costs little more than the interpreter's start-up.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from generator import stamp

if TYPE_CHECKING:
    from pathlib import Path

    from generator.check import SchemaCheck
    from generator.project import Project


def invocation(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as parsed, but what changes only what is printed (-q)."""
    return {key: value for key, value in sorted(vars(args).items()) if key not in ("run", "quiet")}


def answer(args: argparse.Namespace) -> list[str] | None:
    """The lines of the last render with these arguments, if it would change nothing; else None."""
    return None if args.stdout else stamp.answer(args.project, invocation(args))


def recorder(args: argparse.Namespace) -> stamp.Recorder:
    return stamp.Recorder(args.project, invocation(args))


def keep(recorder: stamp.Recorder, project: Project, schemas: SchemaCheck | None,
         outputs: Mapping[Path, Mapping[str, str]], lines: list[str]) -> bool:
    """Keep the stamp of a render that wrote (or found equal) `outputs` and printed `lines`."""
    from generator.digests import cache_root
    from generator.project import CHART, EDITOR_SCHEMA

    recorder.look(probes=[project.root / CHART, project.root / EDITOR_SCHEMA],
                  trees=schemas.sources.crd_dirs if schemas is not None else ())
    cache, own = cache_root(), project.root / ".cache"
    return stamp.save(recorder, project.root, outputs=outputs, lines=lines,
                      excluded=[cache / "schemas", cache / "verdicts", cache / "jinja", own,
                                project.root / project.output],
                      clean=[project.root / project.output, own / "llmpack" / "staging"])
