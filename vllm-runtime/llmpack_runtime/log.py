"""Progress lines: one line each, prefixed `llmpack:`, flushed at once so pod logs show them in order."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(f"llmpack: {message}", file=sys.stderr, flush=True)
