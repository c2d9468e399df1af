"""A yes/no check of values against the values schema, compiled once per process.

Why a second validator beside jsonschema: importing jsonschema and building its validator costs
85-145 ms of CPU per llmpack run on the CI machine (measured: bench, and tests/test_validate_fast.py
shows the two agree), more than a whole `helm template`; this check takes 4-10 ms. Valid values,
the common case, never import jsonschema; invalid ones go through jsonschema for its detailed,
located messages (validate.py). It knows exactly the keywords llmpack's schema uses and refuses
any other, so a schema change cannot silently weaken it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

Check = Callable[[Any], bool]
TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),      # 3.0 is not an integer here
}
ANNOTATIONS = {"description", "title", "default", "errorMessage", "$schema", "$id", "$defs", "examples"}
_LIMITS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda v, n: v >= n, "maximum": lambda v, n: v <= n,
    "exclusiveMinimum": lambda v, n: v > n, "exclusiveMaximum": lambda v, n: v < n}


def matches(regex: re.Pattern[str], text: str, *, anchored: bool) -> bool:
    """ECMA-262 `$` ends the text; Python's also matches before a final newline ("main\\n")."""
    match = regex.search(text)
    return match is not None and (not anchored or match.end() == len(text))


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    """A pattern of the schema, compiled when a value first meets it: compiling all ~40 up front
    would cost a render more than the check itself."""
    return re.compile(pattern)


@lru_cache(maxsize=4)
def compiled(schema_path: Path) -> Check:
    import json

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    return _Compiler(schema).node(schema)


class _Compiler:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.definitions = schema.get("$defs") or {}
        self.compiled: dict[str, Check] = {}

    def node(self, node: dict[str, Any]) -> Check:
        checks = [self.keyword(keyword, arg, node) for keyword, arg in node.items() if keyword not in ANNOTATIONS]
        return lambda v: all(check(v) for check in checks)

    def keyword(self, keyword: str, arg: Any, node: dict[str, Any]) -> Check:
        method = getattr(self, "k_" + keyword.lstrip("$"), None)
        if method is not None:
            return method(arg, node)  # type: ignore[no-any-return]
        if keyword in _LIMITS:
            test = _LIMITS[keyword]
            return lambda v: not TYPES["number"](v) or test(v, arg)
        raise NotImplementedError(f"schema keyword {keyword!r} is not supported by the compiled check")

    def k_ref(self, target: str, node: dict[str, Any]) -> Check:
        name = target.rsplit("/", 1)[-1]
        if name not in self.compiled:
            self.compiled[name] = lambda v: self.compiled[name](v)      # a placeholder while compiling
            self.compiled[name] = self.node(self.definitions[name])
        return lambda v: self.compiled[name](v)

    def k_type(self, arg: str | list[str], node: dict[str, Any]) -> Check:
        kinds = [TYPES[t] for t in (arg if isinstance(arg, list) else [arg])]
        return lambda v: any(kind(v) for kind in kinds)

    def k_enum(self, arg: list[Any], node: dict[str, Any]) -> Check:
        return lambda v: any(v == option and type(v) is type(option) for option in arg)

    def k_required(self, arg: list[str], node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, dict) or all(key in v for key in arg)

    def k_properties(self, arg: dict[str, Any], node: dict[str, Any]) -> Check:
        props = {key: self.node(sub) for key, sub in arg.items()}
        return lambda v: not isinstance(v, dict) or all(props[k](x) for k, x in v.items() if k in props)

    def k_additionalProperties(self, arg: Any, node: dict[str, Any]) -> Check:
        known = set(node.get("properties") or {})
        if arg is False:
            return lambda v: not isinstance(v, dict) or set(v) <= known
        extra = self.node(arg) if isinstance(arg, dict) else TYPES["object"]
        return lambda v: not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)

    def k_items(self, arg: dict[str, Any], node: dict[str, Any]) -> Check:
        item = self.node(arg)
        return lambda v: not isinstance(v, list) or all(item(x) for x in v)

    def k_anyOf(self, arg: list[dict[str, Any]], node: dict[str, Any]) -> Check:
        options = [self.node(sub) for sub in arg]
        return lambda v: any(option(v) for option in options)

    def k_pattern(self, arg: str, node: dict[str, Any]) -> Check:
        anchored = arg.endswith("$")
        return lambda v: not isinstance(v, str) or matches(_regex(arg), v, anchored=anchored)

    def k_minLength(self, arg: int, node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, str) or len(v) >= arg

    def k_maxLength(self, arg: int, node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, str) or len(v) <= arg

    def k_minItems(self, arg: int, node: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, list) or len(v) >= arg
