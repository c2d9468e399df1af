"""Compiled chart templates, kept between runs (render stage): Jinja's compile of the chart's
templates costs more than rendering them, and would be paid by every process.

Jinja's own file bytecode cache does the keeping: one file per template (named by its name and
path), holding the template's source digest, checked on every load, so a changed template is
compiled again. The folder is named by everything else the compiled code depends on: the Jinja
and Python versions and the environment's settings, filters and tests. A cache that cannot be
written only makes the next process compile again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.digests import cache_root

if TYPE_CHECKING:
    import jinja2

SETTINGS = ("block_start_string", "block_end_string", "variable_start_string", "variable_end_string",
            "comment_start_string", "comment_end_string", "line_statement_prefix", "line_comment_prefix",
            "trim_blocks", "lstrip_blocks", "newline_sequence", "keep_trailing_newline", "optimized",
            "autoescape", "finalize", "undefined", "extensions")


def attach(env: jinja2.Environment, root: Path | None = None) -> None:
    """Give `env` a bytecode cache in the cache folder (`root`: crds.default_cache's folder)."""
    import jinja2

    class Cache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                Path(self.directory).mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError:
                pass

    folder = (root or cache_root()) / "jinja" / fingerprint(env)
    env.bytecode_cache = Cache(str(folder), "%s.bc")


def fingerprint(env: jinja2.Environment) -> str:
    """What the compiled code depends on besides the template's text."""
    import jinja2

    settings: dict[str, Any] = {name: _describe(getattr(env, name, None)) for name in SETTINGS}
    parts = [jinja2.__version__, sys.version, json.dumps(settings, sort_keys=True),
             *sorted(env.filters), "|", *sorted(env.tests)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _describe(value: object) -> object:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return sorted(str(key) for key in value)
    return getattr(value, "__qualname__", type(value).__qualname__)
