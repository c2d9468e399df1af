"""Stage 1, load: read values files (and `--set` flags) into layers.

A values file is YAML read in a strict way, because its values end up in manifests
that a YAML 1.1 parser (Kubernetes) reads again. libyaml parses the syntax; llmpack
builds the values from its events itself:

- plain scalars resolve by the YAML 1.2 core schema (`yes` and `on` are strings,
  `0.20` is a number, so a version must be quoted: the schema says so when it is not);
- anchors, aliases, custom tags, duplicate keys and non-string keys are refused;
- the file size and the nesting depth are capped, so no input can make loading slow.

Each layer keeps the line of every path it sets, for located error messages.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import LoadError, Location, UsageError

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32

Path_ = tuple[str | int, ...]

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$")
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
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
    """Read one values file. A missing or empty file is an empty layer only if `display` says so."""
    name = display or str(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise UsageError(f"{name}: cannot read values file: {err.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise LoadError(Location(name), f"file is {size / 1048576:.1f} MiB; values files are limited "
                        f"to {MAX_FILE_BYTES // 1048576} MiB")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise LoadError(Location(name, line), f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                        f"{err.start})") from None
    return parse_text(text, name)


def parse_text(text: str, name: str) -> Layer:
    """Parse YAML text into a layer; the top level must be a mapping (or empty)."""
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise LoadError(Location(name, line), "NUL character in file")
    if text.startswith("\ufeff"):
        text = text[1:]
    builder = _Builder(name)
    builder.run(text)
    data = builder.result
    if data is None:
        return Layer(name, {})
    if not isinstance(data, dict):
        raise LoadError(Location(name, 1), "the top level of a values file must be a mapping of keys")
    return Layer(name, data, builder.lines)


def parse_set(flag: str) -> Layer:
    """`--set a.b=value`: the value is read as one YAML 1.2 flow value (`2`, `"2"`, `[a, b]`)."""
    key, sep, value = flag.partition("=")
    name = f"--set {key}"   # never the value: it may be a secret pasted by mistake
    if not sep or not key:
        raise UsageError(f"--set {key}: expected KEY=VALUE, for example --set workerSpec.size=2")
    parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", key)]
    if any(not p for p in parts):
        raise UsageError(f"{name}: empty key segment in {key!r}")
    parsed = parse_text(f"v: {value}" if value.strip() else "v: ''", name).data["v"]
    data: dict[str, Any] = {parts[-1]: parsed}
    for part in reversed(parts[:-1]):
        data = {part: data}
    return Layer(name, data)


class _Builder:
    """Builds plain data from the YAML event stream, without recursion."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.result: Any = None
        self.lines: dict[Path_, int] = {}
        # stack entries: [container, path, pending_key, key_line, seen_keys]
        self.stack: list[list[Any]] = []
        self.documents = 0

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

    def refuse(self, event: Any, kind: str, line: int | None) -> None:
        """What values files may not hold: a second document, aliases, anchors, custom tags."""
        if kind == "DocumentStartEvent":
            self.documents += 1
            if self.documents > 1:
                raise self.fail(line, "a values file holds one YAML document; found a second '---'")
        elif kind == "AliasEvent":
            raise self.fail(line, f"aliases (*{event.anchor}) are not allowed in values files; write the value out")
        elif getattr(event, "anchor", None):
            raise self.fail(line, f"anchors (&{event.anchor}) are not allowed in values files; write the value out")
        elif getattr(event, "tag", None) is not None and event.tag not in _STANDARD_TAGS:
            raise self.fail(line, f"tag {event.tag!r} is not allowed in values files")

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
            return int(value, 0) if value[:2] in ("0o", "0x") else int(value)
        if _FLOAT.fullmatch(value):
            number = float(value)
            if not math.isfinite(number):
                raise self.fail(line, f"{value} is too large a number; quote it if it is meant as text")
            return number
        if _SPECIAL_FLOAT.fullmatch(value):
            raise self.fail(line, f"{value} is not a usable number; quote it if it is meant as text")
        return value

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
