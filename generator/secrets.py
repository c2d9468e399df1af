"""Secrets never belong in values, nor in any message llmpack prints.

A Hugging Face token anywhere in the values (as written, or base64-, URL- or hex-encoded: see
tokens.py), in a key or in a file's name, a literal under a key named like a secret, or a literal
env value named like one stops a render before anything else runs, and no message quotes them
(every message goes through `tokens.redact`).

A token split in pieces is caught too, by one rule: the pieces one source gives one place are
joined in order and checked like one value. The pieces are the string items of one list or
mapping (`args: [hf_abc, def...]`, `--set 'model.args=[hf_abc, def...]'`), the values of the
--set flags of one key path (`--set a=hf_abc --set a=def...`: the later one wins, but the command
line, and so the shell history and CI log, holds the whole token), and the values of all --set
flags in command-line order (`--set a=hf_abc --set b=def...`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from generator.errors import Location, Problem
from generator.load import Layer
from generator.tokens import HF_TOKEN, holds_token, redact

__all__ = ["HF_TOKEN", "SECRET_KEY", "holds_token", "looks_secret", "redact", "secret_problems"]

SECRET_KEY = re.compile(r"(?i)(token|secret|passw(or)?d|api[-_]?key|credential|private[-_]?key)")
REFUSAL = ("looks like a Hugging Face token (hf_...): never put a token in values; create a Secret and name it "
                 "in download.tokenSecret")
Path_ = tuple[str | int, ...]


def looks_secret(value: Any, key: str | int | None = None) -> bool:
    """A string that is or holds a token, or stands under a key named like a secret."""
    return isinstance(value, str) and ((isinstance(key, str) and SECRET_KEY.search(key) is not None)
                                       or holds_token(value))


def secret_problems(layers: Sequence[Layer]) -> list[Problem]:
    """Secrets never belong in values: a Hugging Face token anywhere, a literal under a key named
    like a secret, or a literal env value named like one. Every layer is read, even one whose value
    a later layer replaces: the file itself leaks. The value is never shown."""
    found: list[Problem] = []
    for layer in layers:
        if holds_token(layer.name):
            found.append(Problem(Location(layer.name), (), "the name of this file or flag holds a Hugging Face "
                                 "token (hf_...); rename it: the names of the layers are written into the bundle"))
        found += _layer_problems(layer)
    return found + _split_over_flags(layers)


def _layer_problems(layer: Layer) -> list[Problem]:
    found: list[Problem] = []
    for path, node in _nodes(layer.data, ()):
        message = _problem(layer.data, path, node)
        if message:
            found.append(Problem(layer.location(path), _shown(path), message))
    return found


def _problem(data: dict[str, Any], path: Path_, node: Any) -> str | None:
    last = path[-1] if path else None
    if isinstance(last, str) and holds_token(last):
        return REFUSAL
    if isinstance(node, (dict, list)):
        pieces = list(node.values() if isinstance(node, dict) else node)
        strings = [p for p in pieces if isinstance(p, str)]
        if len(strings) > 1 and not any(holds_token(s) for s in strings) and holds_token("".join(strings)):
            return "its items, joined, look like a Hugging Face token split in pieces; " + REFUSAL
        return None
    if not isinstance(node, str):
        return None
    if holds_token(node):
        return REFUSAL
    if last == "value" and len(path) >= 2 and _env_name_is_secret(data, path):
        return "a literal value for an environment variable named like a secret; pass it with valueFrom.secretKeyRef"
    if isinstance(last, str) and SECRET_KEY.search(last):
        return "a literal value under a key named like a secret is refused; reference a Kubernetes Secret instead"
    return None


def _shown(path: Path_) -> Path_:
    return tuple("(hidden)" if isinstance(p, str) and holds_token(p) else p for p in path)


def _nodes(node: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    """Every node below the top, each with its path (mappings and lists too, for keys and pieces)."""
    if path:
        yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, (*path, index))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _split_over_flags(layers: Sequence[Layer]) -> list[Problem]:
    """A token given in pieces over several --set flags: those of one key path, and all in order."""
    flags = [layer for layer in layers if layer.name.startswith("--set ")]
    groups: dict[str, list[Layer]] = {}
    for flag in flags:
        groups.setdefault(flag.name, []).append(flag)
    found = []
    for group in [*(g for g in groups.values() if len(g) > 1), *([flags] if len(flags) > 1 else [])]:
        pieces = [piece for flag in group for piece in _strings(flag.data)]
        if not any(holds_token(p) for p in pieces) and holds_token("".join(pieces)):
            names = ", ".join(dict.fromkeys(redact(flag.name) for flag in group))
            found.append(Problem(Location(group[0].name), (), f"the values of {names}, joined, look like a Hugging "
                                 f"Face token split in pieces; {REFUSAL}"))
    return found[:1]


def _env_name_is_secret(data: dict[str, Any], path: Path_) -> bool:
    item: Any = data
    for part in path[:-1]:
        item = item[part]
    return isinstance(item, dict) and isinstance(item.get("name"), str) and bool(SECRET_KEY.search(item["name"]))
