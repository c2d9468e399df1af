"""Smaller schemas for kubeconform, with the same checks (part of the check stage; schemas.py uses it).

kubeconform compiles every schema it reads, and the compile time follows the size: KServe's
InferenceService CRD spells out a full PodSpec for each of its predictor, transformer and
explainer parts, and every core kind file reads Kubernetes' whole `_definitions.json`. So:

- `slim` drops what no validator reads (descriptions, `x-kubernetes-*` annotations), only where a
  schema is (a property named `description` stays);
- `share` hoists each repeated sub-schema into `definitions` once and points each use at it with
  a `$ref` that is the only key of its object (so JSON Schema draft 4, which ignores a `$ref`'s
  siblings, reads exactly the same schema);
- `self_contained` gives a core kind file the definitions it reaches, and nothing else.

A `$ref` changes neither what is valid nor the messages: the validator reports the instance
location of each error, which is the same either way (tests/test_caches.py compares them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("additionalProperties", "items", "not", "contains", "if", "then", "else", "propertyNames",
              "additionalItems", "unevaluatedProperties", "unevaluatedItems")
MIN_SHARED = 200       # bytes of JSON: a smaller repeat costs more as a $ref than it saves
Node = Any


def _map_schemas(node: dict[str, Any], change: Callable[[Node], Node]) -> dict[str, Any]:
    """`node` with `change` applied to each of its direct sub-schemas (other values as they are)."""
    out = dict(node)
    for key, value in node.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: change(item) for name, item in value.items()}
        elif (key in SCHEMA_LISTS or key in SCHEMA_ONE) and isinstance(value, list):
            out[key] = [change(item) for item in value]
        elif key in SCHEMA_ONE and isinstance(value, dict):
            out[key] = change(value)
    return out


def _children(node: dict[str, Any]) -> list[Node]:
    found: list[Node] = []
    _map_schemas(node, lambda child: found.append(child))
    return found


def slim(node: Node, refs: Callable[[str], str] | None = None) -> Node:
    """The schema without annotations; `refs` rewrites each `$ref` (None: as it is)."""
    if not isinstance(node, dict):
        return node
    kept = {k: v for k, v in node.items() if k != "description" and not k.startswith("x-kubernetes-")}
    if refs is not None and isinstance(kept.get("$ref"), str):
        kept["$ref"] = refs(kept["$ref"])
    return _map_schemas(kept, lambda child: slim(child, refs))


def _text(node: Node) -> str:
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def _count(node: Node, counts: Counter[str], texts: dict[int, str]) -> None:
    """Count every sub-schema by its canonical text (kept by id for the second pass)."""
    if isinstance(node, dict):
        for child in _children(node):
            _count(child, counts, texts)
        texts[id(node)] = text = _text(node)
        counts[text] += 1


def share(schema: dict[str, Any], key: str = "definitions") -> dict[str, Any]:
    """The same schema with each sub-schema that occurs more than once (and is not tiny) defined once
    under `key` at the root and referenced where it occurs. A schema that already has `key` is
    returned as it is."""
    if key in schema:
        return schema
    counts: Counter[str] = Counter()
    texts: dict[int, str] = {}
    _count(schema, counts, texts)
    names: dict[str, str] = {}
    shared: dict[str, Any] = {}

    def rebuild(node: Node, enclosing: int) -> Node:
        if not isinstance(node, dict):
            return node
        text = texts[id(node)]
        if counts[text] < 2 or counts[text] <= enclosing or len(text) < MIN_SHARED:
            return _map_schemas(node, lambda child: rebuild(child, enclosing))
        if text not in names:
            names[text] = name = f"s{len(names)}"
            shared[name] = _map_schemas(node, lambda child: rebuild(child, counts[text]))
        return {"$ref": f"#/{key}/{names[text]}"}

    root = _map_schemas(schema, lambda child: rebuild(child, 1))
    return {**root, key: dict(sorted(shared.items(), key=lambda item: int(item[0][1:])))} if shared else root


def self_contained(doc: dict[str, Any], definitions: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """A core kind file whose references into a shared definitions file (`prefix` + NAME) point at its
    own `$defs`, holding the definitions it reaches (all slimmed), and only those."""

    def local(ref: str) -> str:
        return "#/$defs/" + ref.removeprefix(prefix) if ref.startswith(prefix) else ref

    out = slim(doc, local)
    reached: dict[str, Any] = {}
    todo = _refs(out)
    while todo:
        name = todo.pop()
        if name in reached or name not in definitions:
            continue
        reached[name] = slim(definitions[name], local)
        todo += _refs(reached[name])
    return {**out, "$defs": dict(sorted(reached.items()))} if reached else out


def _refs(node: Node) -> list[str]:
    """The names of the local `#/$defs/NAME` references in a schema."""
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.append(ref.removeprefix("#/$defs/"))
        for child in _children(node):
            found += _refs(child)
    return found
