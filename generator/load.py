"""Stage 1, load: read values files (and `--set` flags) into layers.

A values file is YAML read in a strict way, because its values end up in manifests
that a YAML 1.1 parser (Kubernetes) reads again. libyaml parses the syntax; llmpack
builds the values from its events itself:

- plain scalars resolve by the YAML 1.2 core schema (`yes` and `on` are strings,
  `0.20` is a number, so a version must be quoted: the schema says so when it is not);
- anchors, aliases, custom tags, duplicate keys, non-string keys and directives other than
  `%YAML 1.2` are refused (a `%YAML 1.1` file expects rules llmpack does not apply);
- integers are 64-bit, as Kubernetes reads them; a longer number must be quoted;
- the file size and the nesting depth are capped, so no input can make loading slow; the file
  itself is read through files.py (a regular file, capped while reading, UTF-8).

A `--set KEY=VALUE` value is one line holding one YAML flow value and nothing else: a line break,
or text that YAML would drop as a comment (`name=#x`, `name=a # b`), is refused, never cut short.

Each layer keeps the line of every path it sets, for located error messages.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import files
from generator.errors import CONTROL, LoadError, Location, UsageError

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_INT = 2**63 - 1

Path_ = tuple[str | int, ...]

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$")
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
# --set only: compiled (and cached) by re when a flag is first read
_LINE_BREAK = "[\n\r\x85\u2028\u2029]"
_STANDARD_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


@dataclass(frozen=True)
class Layer:
    """One source of values: its display name, its data and the line of each path."""

    name: str
    data: dict[str, Any]
    lines: dict[Path_, int] = field(default_factory=dict)

    def location(self, path: Path_) -> Location:
        return Location(self.name, self.lines.get(path))


def load_file(path: Path, display: str | None = None) -> Layer:
    """Read one values file (`display`: its name in messages and in the bundle's headers)."""
    name = display or str(path)
    return parse_text(files.read_text(path, name, limit=MAX_FILE_BYTES, what="values file"), name)


def parse_text(text: str, name: str) -> Layer:
    """Parse YAML text into a layer; the top level must be a mapping (or empty)."""
    return _layer(_parse(text, name), name)


def _parse(text: str, name: str) -> _Builder:
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise LoadError(Location(name, line), "NUL character in file")
    if text.startswith("\ufeff"):
        text = text[1:]
    builder = _Builder(name)
    builder.run(text)
    return builder


def _layer(builder: _Builder, name: str) -> Layer:
    data = builder.result
    if data is None:
        return Layer(name, {})
    if not isinstance(data, dict):
        raise LoadError(Location(name, 1), "the top level of a values file must be a mapping of keys")
    return Layer(name, data, builder.lines)


def parse_set(flag: str) -> Layer:
    """`--set a.b=value`: the value is read as one YAML 1.2 flow value (`2`, `"2"`, `[a, b]`) that
    must be the whole of it: no line break, nothing after it (a `#` comment would swallow the rest)."""
    key, sep, value = flag.partition("=")
    if re.search(CONTROL, key):
        raise UsageError(f"--set {key!r}: a key holds no control character or line break")
    name = f"--set {key}"   # never the value: it may be a secret pasted by mistake
    if not sep or not key:
        raise UsageError(f"--set {key}: expected KEY=VALUE, for example --set workerSpec.size=2")
    parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", key)]
    if any(not p for p in parts):
        raise UsageError(f"{name}: empty key segment in {key!r}")
    data: dict[str, Any] = {parts[-1]: _set_value(value, name)}
    for part in reversed(parts[:-1]):
        data = {part: data}
    return Layer(name, data)


def _set_value(value: str, name: str) -> Any:
    if re.search(_LINE_BREAK, value):
        raise LoadError(Location(name), "the value holds a line break; a --set value is one line (a scalar, "
                        "[a, list] or {a: map}): put longer values in a file and pass it with -f FILE")
    text = f"v: {value}" if value.strip() else "v: ''"
    try:
        builder = _parse(text, name)
    except LoadError as err:   # one line: the flag names the place, a line number would not help
        raise LoadError(Location(name), err.message) from None
    if text[builder.value_end:].strip():
        raise LoadError(Location(name), "the value goes on after its end, and YAML would drop the rest as a "
                        "comment (' #...'); quote the whole value, e.g. --set 'KEY=\"#x\"'")
    return builder.result["v"]


def _short(value: str) -> str:
    return value if len(value) <= 24 else f"{value[:20]}... ({len(value)} characters)"


class _Builder:
    """Builds plain data from the YAML event stream, without recursion."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.result: Any = None
        self.lines: dict[Path_, int] = {}
        # stack entries: [container, path, pending_key, key_line, seen_keys]
        self.stack: list[list[Any]] = []
        self.documents = 0
        self.value_end = 0    # where the last node directly below the top level ended (--set)

    def fail(self, line: int | None, message: str) -> LoadError:
        return LoadError(Location(self.name, line), message)

    def run(self, text: str) -> None:
        """libyaml (C) reads the syntax; the scalars resolve by YAML 1.2's core schema, in `scalar`."""
        import yaml
        from yaml.error import MarkedYAMLError, YAMLError
        from yaml.reader import ReaderError

        try:
            for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
                self.on_event(event)
        except LoadError:
            raise
        except ReaderError as err:
            line = text[: err.position].count("\n") + 1 if err.position is not None else None
            raise self.fail(line, f"unacceptable character #x{err.character:04x} in file") from None
        except MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark is not None else None
            message = f"YAML syntax error: {err.problem or err.context}"
            source = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
            if "\t" in source[: len(source) - len(source.lstrip())]:
                message += " (a tab indents this line: YAML indents with spaces only)"
            raise self.fail(line, message) from None
        except YAMLError as err:
            raise self.fail(None, f"YAML error: {err}") from None

    def on_event(self, event: Any) -> None:
        kind = type(event).__name__
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        self.refuse(event, kind, line)
        if kind == "ScalarEvent":
            self.add(self.scalar(event, line), line)
        elif kind in ("MappingStartEvent", "SequenceStartEvent"):
            if len(self.stack) >= MAX_DEPTH:
                raise self.fail(line, f"nesting deeper than {MAX_DEPTH} levels")
            container: Any = {} if kind == "MappingStartEvent" else []
            path = self.add(container, line)
            self.stack.append([container, path, None, None, {}])
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            self.stack.pop()
        if len(self.stack) == 1 and kind in ("ScalarEvent", "MappingEndEvent", "SequenceEndEvent"):
            self.value_end = event.end_mark.index

    def refuse(self, event: Any, kind: str, line: int | None) -> None:
        """What values files may not hold: a second document, aliases, anchors, custom tags."""
        if kind == "DocumentStartEvent":
            self.documents += 1
            if self.documents > 1:
                raise self.fail(line, "a values file holds one YAML document; found a second '---'")
            self.directives(event, line)
        elif kind == "AliasEvent":
            raise self.fail(line, f"aliases (*{event.anchor}) are not allowed in values files; write the value out")
        elif getattr(event, "anchor", None):
            raise self.fail(line, f"anchors (&{event.anchor}) are not allowed in values files; write the value out")
        elif getattr(event, "tag", None) is not None and event.tag not in _STANDARD_TAGS:
            raise self.fail(line, f"tag {event.tag!r} is not allowed in values files")

    def directives(self, event: Any, line: int | None) -> None:
        version = getattr(event, "version", None)
        if version is not None and tuple(version) != (1, 2):
            raise self.fail(line, f"%YAML {version[0]}.{version[1]}: values files are read by YAML 1.2 rules "
                            "(yes is text, 0777 is 777); remove the directive")
        if getattr(event, "tags", None):
            raise self.fail(line, "%TAG directives are not allowed in values files; remove them")

    def scalar(self, event: Any, line: int | None) -> Any:
        value: str = event.value
        tag = event.tag
        if tag == "tag:yaml.org,2002:str" or (tag is None and event.style):
            return value
        if tag is None:
            return self.resolve_plain(value, line)
        resolved = self.resolve_plain(value, line)
        expected = {"tag:yaml.org,2002:int": int, "tag:yaml.org,2002:float": float,
                    "tag:yaml.org,2002:bool": bool, "tag:yaml.org,2002:null": type(None)}.get(tag)
        if expected is None or type(resolved) is not expected:
            raise self.fail(line, f"value {value!r} does not match its tag {tag}")
        return resolved

    def resolve_plain(self, value: str, line: int | None) -> Any:
        if _NULL.fullmatch(value):
            return None
        if value in _BOOL:
            return _BOOL[value]
        if _INT.fullmatch(value):
            return self.integer(value, line)
        if _FLOAT.fullmatch(value):
            number = float(value)
            if not math.isfinite(number):
                raise self.fail(line, f"{_short(value)} is too large a number; quote it if it is meant as text")
            return number
        if _SPECIAL_FLOAT.fullmatch(value):
            raise self.fail(line, f"{value} is not a usable number; quote it if it is meant as text")
        return value

    def integer(self, value: str, line: int | None) -> int:
        """A 64-bit integer, as Kubernetes reads one; the digits are counted before converting, as
        Python refuses to convert more than 4300 decimal digits."""
        number = int(value, 0) if value[:2] in ("0o", "0x") else int(value) if len(value) <= 40 else None
        if number is None or not -MAX_INT - 1 <= number <= MAX_INT:
            raise self.fail(line, f"{_short(value)} is too large an integer (Kubernetes reads 64-bit integers); "
                            "quote it if it is meant as text")
        return number

    def add(self, value: Any, line: int | None) -> Path_:
        if not self.stack:
            self.result = value
            return ()
        top = self.stack[-1]
        container: Any = top[0]
        path: Path_ = top[1]
        if isinstance(container, list):
            item_path = (*path, len(container))
            container.append(value)
            self.record(item_path, line)
            return item_path
        if top[2] is None:
            if not isinstance(value, str):
                shown = "a mapping or list" if isinstance(value, (dict, list)) else repr(value)
                raise self.fail(line, f"keys must be strings; got {shown}; quote the key")
            if value in top[4]:
                raise self.fail(line, f"duplicate key {value!r} (first set on line {top[4][value]})")
            top[4][value] = line
            top[2], top[3] = value, line
            return path
        key, key_line = top[2], top[3]
        top[2] = top[3] = None
        container[key] = value
        self.record((*path, key), key_line)
        return (*path, key)

    def record(self, path: Path_, line: int | None) -> None:
        if line is not None:
            self.lines[path] = line
