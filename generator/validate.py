"""Stage 3, validate: check merged values against schemas/values.schema.json.

Every violation is reported at once, each at the layer and line that set the value,
with a message written for people (the value is never shown when its key looks
like a secret).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.compiled_schema import compiled, matches
from generator.errors import Problem, ValuesError
from generator.merge import Merged
from generator.secrets import looks_secret

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator


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
        if isinstance(instance, str) and not matches(re.compile(regex), instance, anchored=regex.endswith("$")):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    def integer(checker: Any, instance: Any) -> bool:
        """JSON Schema counts 3.0 as an integer; Kubernetes and bash do not, so neither does llmpack."""
        return isinstance(instance, int) and not isinstance(instance, bool)

    types = Draft202012Validator.TYPE_CHECKER.redefine("integer", integer)
    strict = extend(Draft202012Validator, {"pattern": pattern}, type_checker=types)  # type: ignore[no-untyped-call]
    return strict(_schema(schema_path))  # type: ignore[no-any-return]


def validate(merged: Merged, schema_path: Path, context: str = "") -> None:
    """Raise `ValuesError` listing every schema violation of `merged.data`.

    Valid values (the common case) pass the compiled check (compiled_schema.py says why there is
    one); only invalid ones go through jsonschema, for its detailed errors."""
    if compiled(schema_path.resolve())(merged.data):
        return
    validator = _validator(schema_path.resolve())
    errors = sorted(validator.iter_errors(merged.data), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [problem for error in errors for problem in _problems(error, merged)]
    if problems:
        raise ValuesError(problems, context)


def describe(value: Any, key: str | int | None) -> str:
    """A short description of a value for messages; secrets are never shown."""
    kind = _kind(value)
    if looks_secret(value, key):
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
    schema: Any = error.schema if isinstance(error.schema, dict) else {}
    kind, got = str(error.validator), describe(error.instance, key)
    expected: Any = error.validator_value
    if "errorMessage" in schema and kind in ("pattern", "minLength", "maxLength"):
        return f"{schema['errorMessage']}; got {got}"
    if kind == "type":
        return _type_message(expected if isinstance(expected, list) else [expected], error.instance, got)
    if kind == "enum":
        return _enum_message(expected, error.instance, got)
    if kind in _LIMIT_WORDS:
        return f"must be {_LIMIT_WORDS[kind]} {expected}; got {got}"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters long"
    texts = {"minItems": f"must hold at least {expected} item(s)",
             "pattern": f"does not match the pattern {expected}; got {got}",
             "anyOf": f"{got} fits none of the allowed forms; see the schema's description of this key"}
    return texts.get(kind, f"{kind} check failed")


_LIMIT_WORDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
                "exclusiveMaximum": "less than"}


def _type_message(wanted: list[str], value: Any, got: str) -> str:
    text = f"expected {' or '.join(_TYPE_NAMES.get(t, t) for t in wanted)}, got {got}"
    if "string" in wanted and isinstance(value, (int, float, bool)):
        return text + "; quote it to keep it text (YAML reads it as a number or boolean)"
    if set(wanted) & {"integer", "number"} and isinstance(value, str) and re.fullmatch(r"-?[0-9.]+", value):
        return text + "; write it without quotes"
    if "integer" in wanted and isinstance(value, float) and value.is_integer():
        return text + f"; write {int(value)}, not {value}"
    if wanted == ["boolean"] and isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n"):
        return text + "; write true or false (YAML 1.2 reads yes/no/on/off as text)"
    return text


def _enum_message(options: list[Any], value: Any, got: str) -> str:
    text = f"must be one of {', '.join(json.dumps(o) for o in options)}; got {got}"
    if isinstance(value, float) and any(isinstance(o, str) for o in options):
        text += "; quote it (unquoted, 0.20 is the number 0.2)"
    return text
