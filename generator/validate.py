"""Stage 3, validate: check merged values against schemas/values.schema.json.

Every violation is reported at once, each at the layer and line that set the value,
with a message written for people (the value is never shown when its key looks
like a secret).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Sequence
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
def _validator(schema_path: Path) -> Validator:
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def validate(merged: Merged, schema_path: Path, context: str = "") -> None:
    """Raise `ValuesError` listing every schema violation of `merged.data`."""
    validator = _validator(schema_path.resolve())
    errors = sorted(validator.iter_errors(merged.data), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [problem for error in errors for problem in _problems(error, merged)]
    if problems:
        raise ValuesError(problems, context)


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
                found.append(Problem(layer.location(path), path, message))
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
