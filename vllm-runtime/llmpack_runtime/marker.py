"""The model completion marker: the download Job writes it after verifying every file, the head reads it.

The marker holds `MODEL_ID@REVISION`. Serving from a folder without it, or with a marker for another revision,
would load a half-downloaded or wrong model, so the head refuses to start instead.
"""

from __future__ import annotations

from pathlib import Path

from llmpack_runtime.errors import ModelNotReady

SHOWN = 200  # characters of a marker quoted in an error


def check(marker: Path, expected: str | None) -> str:
    """Return the marker's content, or raise ModelNotReady when it is missing or names another model."""
    try:
        found = marker.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        raise ModelNotReady(str(marker), "does not exist") from None
    except OSError as err:
        raise ModelNotReady(str(marker), f"cannot be read ({err.strerror or err})") from None
    if expected is not None and found != expected:
        raise ModelNotReady(str(marker), f"holds {found[:SHOWN]!r}, expected {expected!r}")
    return found
