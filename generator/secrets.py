"""Secrets never belong in values, nor in any message llmpack prints.

A Hugging Face token anywhere in the values, a literal under a key named like a secret, or a
literal env value named like one stops a render before anything else runs, and no message
quotes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from generator.errors import Problem
from generator.load import Layer

SECRET_KEY = re.compile(r"(?i)(token|secret|passw(or)?d|api[-_]?key|credential|private[-_]?key)")
HF_TOKEN = re.compile(r"hf_[A-Za-z]{34}")   # gitleaks' huggingface-access-token


def looks_secret(value: Any, key: str | int | None = None) -> bool:
    """A string that is or holds a token, or stands under a key named like a secret."""
    return isinstance(value, str) and ((isinstance(key, str) and SECRET_KEY.search(key) is not None)
                                       or HF_TOKEN.search(value) is not None)


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
