"""Stage 3, validate: check merged values against schemas/values.schema.json.

Every violation is reported at once, each at the layer and line that set the value,
with a message written for people (the value is never shown when its key looks
like a secret).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import Problem, ValuesError
from generator.load import Layer
from generator.merge import Merged

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

SECRET_KEY = re.compile(r"(?i)(token|secret|passw(or)?d|api[-_]?key|credential|private[-_]?key)")
HF_TOKEN = re.compile(r"hf_[A-Za-z]{34}")   # gitleaks' huggingface-access-token

_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "object": "a mapping", "array": "a list", "null": "null",
}


@lru_cache(maxsize=4)
def _schema(schema_path: Path) -> dict[str, Any]:
    return json.loads(schema_path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@lru_cache(maxsize=4)
def _validator(schema_path: Path) -> Validator:
    from jsonschema import Draft202012Validator, ValidationError
    from jsonschema.validators import extend

    def pattern(validator: Any, regex: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
        """ECMA-262 `$` ends the text; Python's also matches before a final newline ("main\n")."""
        if isinstance(instance, str) and not _matches(re.compile(regex), instance, regex.endswith("$")):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    strict = extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]
    return strict(_schema(schema_path))  # type: ignore[no-any-return]


def validate(merged: Merged, schema_path: Path, context: str = "") -> None:
    """Raise `ValuesError` listing every schema violation of `merged.data`.

    Valid values (the common case) are recognised by a validator compiled from the schema once
    per process; only invalid ones go through jsonschema, for its detailed errors."""
    if _compiled(schema_path.resolve())(merged.data):
        return
    validator = _validator(schema_path.resolve())
    errors = sorted(validator.iter_errors(merged.data), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [problem for error in errors for problem in _problems(error, merged)]
    if problems:
        raise ValuesError(problems, context)


Check = Callable[[Any], bool]
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}
_ANNOTATIONS = {"description", "title", "default", "errorMessage", "$schema", "$id", "$defs", "examples"}


@lru_cache(maxsize=4)
def _compiled(schema_path: Path) -> Check:
    """A yes/no validator for the keywords llmpack's schema uses (tests prove it agrees with jsonschema)."""
    schema = _schema(schema_path)
    cache: dict[str, Check] = {}

    def ref(target: str) -> Check:
        name = target.rsplit("/", 1)[-1]
        if name not in cache:
            cache[name] = lambda v: compiled[name](v)
            compiled[name] = compile_node(schema["$defs"][name])
        return cache[name]

    compiled: dict[str, Check] = {}

    def compile_node(node: dict[str, Any]) -> Check:
        checks: list[Check] = []
        for keyword, arg in node.items():
            if keyword in _ANNOTATIONS:
                continue
            checks.append(keyword_check(keyword, arg, node))
        return lambda v: all(check(v) for check in checks)

    def keyword_check(keyword: str, arg: Any, node: dict[str, Any]) -> Check:
        if keyword == "$ref":
            return ref(arg)
        if keyword == "type":
            kinds = [_TYPES[t] for t in (arg if isinstance(arg, list) else [arg])]
            return lambda v: any(kind(v) for kind in kinds)
        if keyword == "enum":
            return lambda v: any(v == option and type(v) is type(option) for option in arg)
        if keyword == "required":
            return lambda v: not isinstance(v, dict) or all(key in v for key in arg)
        if keyword == "properties":
            props = {key: compile_node(sub) for key, sub in arg.items()}
            return lambda v: not isinstance(v, dict) or all(props[k](x) for k, x in v.items() if k in props)
        if keyword == "additionalProperties":
            known = set(node.get("properties") or {})
            if arg is False:
                return lambda v: not isinstance(v, dict) or set(v) <= known
            extra = compile_node(arg)
            return lambda v: not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)
        if keyword == "items":
            item = compile_node(arg)
            return lambda v: not isinstance(v, list) or all(item(x) for x in v)
        if keyword == "anyOf":
            options = [compile_node(sub) for sub in arg]
            return lambda v: any(option(v) for option in options)
        if keyword == "pattern":
            regex = re.compile(arg)
            anchored = arg.endswith("$")
            return lambda v: not isinstance(v, str) or _matches(regex, v, anchored)
        limits: dict[str, Callable[[Any, Any], bool]] = {
            "minimum": lambda v, n: v >= n, "maximum": lambda v, n: v <= n,
            "exclusiveMinimum": lambda v, n: v > n, "exclusiveMaximum": lambda v, n: v < n}
        if keyword in limits:
            test = limits[keyword]
            return lambda v: not _TYPES["number"](v) or test(v, arg)
        if keyword in ("minLength", "maxLength"):
            return lambda v: not isinstance(v, str) or (len(v) >= arg if keyword == "minLength" else len(v) <= arg)
        if keyword == "minItems":
            return lambda v: not isinstance(v, list) or len(v) >= arg
        raise NotImplementedError(f"schema keyword {keyword!r} is not supported by the compiled validator")

    return compile_node(schema)


def _matches(regex: re.Pattern[str], text: str, anchored: bool) -> bool:
    match = regex.search(text)
    return match is not None and (not anchored or match.end() == len(text))


def secret_problems(layers: Sequence[Layer]) -> list[Problem]:
    """Secrets never belong in values: a Hugging Face token anywhere, a literal under a key named
    like a secret, or a literal env value named like one. Every layer is read, even one whose value
    a later layer replaces: the file itself leaks. The value is never shown."""
    found: list[Problem] = []
    for layer in layers:
        for path, value in _strings(layer.data, ()):
            key = next((p for p in reversed(path) if isinstance(p, str)), "")
            message = None
            if HF_TOKEN.search(value) or (isinstance(path[-1], str) and HF_TOKEN.search(path[-1])):
                message = ("looks like a Hugging Face token (hf_...): never put a token in values; create a Secret "
                           "and name it in download.tokenSecret")
            elif key == "value" and len(path) >= 2 and _env_name_is_secret(layer.data, path):
                message = ("a literal value for an environment variable named like a secret; pass it with "
                           "valueFrom.secretKeyRef")
            elif isinstance(path[-1], str) and SECRET_KEY.search(path[-1]):
                message = ("a literal value under a key named like a secret is refused; reference a Kubernetes "
                           "Secret instead")
            if message:
                shown = tuple("(hidden)" if isinstance(p, str) and HF_TOKEN.search(p) else p for p in path)
                found.append(Problem(layer.location(path), shown, message))
    return found


def _strings(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, index))
    elif isinstance(node, str) and path:
        yield path, node


def _env_name_is_secret(data: dict[str, Any], path: tuple[str | int, ...]) -> bool:
    item: Any = data
    for part in path[:-1]:
        item = item[part]
    return isinstance(item, dict) and isinstance(item.get("name"), str) and bool(SECRET_KEY.search(item["name"]))


def describe(value: Any, key: str | int | None) -> str:
    """A short description of a value for messages; secrets are never shown."""
    kind = _kind(value)
    if isinstance(value, str) and ((isinstance(key, str) and SECRET_KEY.search(key)) or HF_TOKEN.search(value)):
        return f"{kind} (value hidden)"
    if isinstance(value, (dict, list)):
        return kind
    shown = json.dumps(value, ensure_ascii=True)
    if len(shown) > 60:
        shown = shown[:57] + '..."'
    return f"{kind} {shown}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "null"


def _problems(error: ValidationError, merged: Merged) -> list[Problem]:
    path = tuple(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        # report the errors of the alternative whose type fits the value (e.g. the mapping form)
        fitting = [e for e in error.context if e.validator != "type" and _branch_fits(error, e)]
        if fitting:
            return [p for e in fitting for p in _problems(e, merged)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return [Problem(merged.locate((*path, extra)), (*path, extra), message)
                for extra, message in _unknown_keys(error)]
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        if missing:
            gone = (*path, missing.group(1))
            if gone in merged.deletions:
                return [Problem(merged.deletions[gone], gone, "required, but deleted by null here")]
            return [Problem(merged.locate(gone), gone, "required key is missing")]
    return [Problem(merged.locate(path), path, _message(error, path))]


def _branch_fits(error: ValidationError, sub: ValidationError) -> bool:
    branches: Any = error.validator_value
    branch = branches[sub.relative_schema_path[0]] if sub.relative_schema_path else {}
    wanted = branch.get("type") if isinstance(branch, dict) else None
    kinds = {"object": dict, "array": list, "string": str}
    return wanted in kinds and isinstance(error.instance, kinds[wanted])


def _unknown_keys(error: ValidationError) -> list[tuple[str, str]]:
    schema: Any = error.schema if isinstance(error.schema, dict) else {}
    instance: Any = error.instance
    known = sorted((schema.get("properties") or {}).keys())
    found = []
    for extra in sorted(set(instance) - set(known)):
        close = difflib.get_close_matches(extra, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        found.append((extra, f"unknown key; {hint}"))
    return found


def _message(error: ValidationError, path: tuple[str | int, ...]) -> str:
    key = path[-1] if path else None
    value: Any = error.instance
    schema: Any = error.schema if isinstance(error.schema, dict) else {}
    kind: Any = error.validator
    expected: Any = error.validator_value
    if "errorMessage" in schema and kind in ("pattern", "minLength", "maxLength"):
        return f"{schema['errorMessage']}; got {describe(value, key)}"
    if kind == "type":
        wanted: list[str] = expected if isinstance(expected, list) else [expected]
        names = [_TYPE_NAMES.get(t, t) for t in wanted]
        text = f"expected {' or '.join(names)}, got {describe(value, key)}"
        if "string" in wanted and isinstance(value, (int, float, bool)):
            text += "; quote it to keep it text (YAML reads it as a number or boolean)"
        elif set(wanted) & {"integer", "number"} and isinstance(value, str) and re.fullmatch(r"-?[0-9.]+", value):
            text += "; write it without quotes"
        elif wanted == ["boolean"] and isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n"):
            text += "; write true or false (YAML 1.2 reads yes/no/on/off as text)"
        return text
    if kind == "enum":
        options = ", ".join(json.dumps(o) for o in expected)
        text = f"must be one of {options}; got {describe(value, key)}"
        if isinstance(value, float) and any(isinstance(o, str) for o in expected):
            text += "; quote it (unquoted, 0.20 is the number 0.2)"
        return text
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
                 "exclusiveMaximum": "less than"}[kind]
        return f"must be {words} {expected}; got {describe(value, key)}"
    if kind == "minItems":
        return f"must hold at least {expected} item(s)"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else \
            f"must be at least {expected} characters long"
    if kind == "pattern":
        return f"does not match the pattern {expected}; got {describe(value, key)}"
    if kind in ("anyOf", "oneOf"):
        return f"{describe(value, key)} fits none of the allowed forms; see the schema's description of this key"
    return f"{kind} check failed"
