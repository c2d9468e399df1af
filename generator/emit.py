"""YAML text that every reader reads back the same: Kubernetes (YAML 1.1, `y`/`n` as
booleans), PyYAML, ruamel, kustomize.

- every string value is double-quoted, with escapes for anything a YAML 1.1 reader
  would treat as a line break or drop (\\n, \\r, NEL, U+2028, U+2029, control bytes);
- a multi-line string of plain printable lines (a script) is a literal block `|`,
  so reviewers read it as text in a pull request;
- keys are plain only when no YAML 1.1 reader could take them for anything else;
- mapping keys are sorted, so the output does not depend on input order.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML11_WORDS = frozenset(
    w for base in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
    for w in (base, base.capitalize(), base.upper())
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]')
_BLOCK_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff\t]")


def quote(text: str) -> str:
    """A double-quoted YAML scalar that reads back as exactly `text`."""
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


_quoted = lru_cache(maxsize=8192)(quote)     # for exact strings: a fleet repeats its strings


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the number {value} to a manifest")
        text = repr(value)
        if "." not in text and "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"cannot write {type(value).__name__} to a manifest")


@lru_cache(maxsize=4096)
def key(text: str) -> str:
    if _PLAIN_KEY.fullmatch(text) and text not in _YAML11_WORDS:
        return text
    return quote(text)


def dump(value: Any) -> str:
    """A document in block style, ending with a newline."""
    lines: list[str] = []
    _block(value, 0, lines)
    return "\n".join(lines) + "\n"


def _block(value: Any, indent: int, lines: list[str]) -> None:
    if isinstance(value, dict) and value:
        _map(value, indent, lines)
    elif isinstance(value, list) and value:
        _seq(value, indent, lines)
    else:
        lines.append(" " * indent + _inline(value))


def _map(value: dict[Any, Any], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for k in sorted(value):
        item, head = value[k], f"{pad}{key(k if type(k) is str else str(k))}:"
        kind = type(item)       # the common cases inline: a one-line string, a mapping
        if kind is str and "\n" not in item:
            lines.append(f"{head} {_quoted(item)}")
        elif kind is dict and item:
            lines.append(head)
            _map(item, indent + 2, lines)
        else:
            _entry(head, item, indent, lines)


def _seq(value: list[Any], indent: int, lines: list[str]) -> None:
    """A list item that is a mapping starts on the dash's line: `- first: ...`, the rest below it."""
    pad = " " * indent
    dash = pad + "-"
    for item in value:
        if isinstance(item, dict) and item:
            start = len(lines)
            _map(item, indent + 2, lines)
            lines[start] = f"{pad}- {lines[start][indent + 2:]}"    # the first line without its indent
        elif type(item) is str and "\n" not in item:
            lines.append(f"{dash} {_quoted(item)}")
        else:
            _entry(dash, item, indent, lines)


def _entry(head: str, value: Any, indent: int, lines: list[str]) -> None:
    kind = type(value)     # exact types first, without isinstance chains: the common case
    if kind is str:
        block = _literal(value, indent) if "\n" in value else None
        lines.append(f"{head} {_quoted(value)}" if block is None else head + block)
    elif kind is int:
        lines.append(f"{head} {value}")
    elif kind is bool:
        lines.append(f"{head} {'true' if value else 'false'}")
    elif isinstance(value, (dict, list)) and value:
        lines.append(head)
        _block(value, indent + 2, lines)
    elif isinstance(value, str) and _literal_ok(value):
        body = value[:-1] if value.endswith("\n") else value
        lines.append(f"{head} |{'' if value.endswith(chr(10)) else '-'}")
        lines.extend((" " * (indent + 2) + line) if line else "" for line in body.split("\n"))
    else:
        lines.append(f"{head} {_inline(value)}")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


@lru_cache(maxsize=1024)
def _literal(text: str, indent: int) -> str | None:
    """The ` |` block of `text` below a key at `indent` (one text: the lines joined), or None when a
    literal block would not keep `text` exactly (cached: scripts repeat in every release)."""
    if not _literal_ok(text):
        return None
    keep = text.endswith("\n")
    body = text[:-1] if keep else text
    pad = " " * (indent + 2)
    return "\n".join([f" |{'' if keep else '-'}", *((pad + line) if line else "" for line in body.split("\n"))])


def _literal_ok(text: str) -> bool:
    """A literal block keeps `text` exactly: several lines, no trailing blanks, nothing YAML folds."""
    if "\n" not in text.rstrip("\n") or text.endswith("\n\n") or _BLOCK_UNSAFE.search(text):
        return False
    lines = text.rstrip("\n").split("\n")
    first = next(line for line in lines if line)
    return not first.startswith(" ") and all(line == line.rstrip(" ") for line in lines)
