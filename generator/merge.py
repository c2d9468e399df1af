"""Stage 2, merge: coalesce the layers of one release into one values tree.

The one rule, applied layer by layer in order (later wins):

- a mapping merges into a mapping key by key;
- a list or a scalar replaces what was there (lists are never appended);
- `null` deletes the key, so a later layer can remove a default.

Every path in the result remembers the layer and line that set it (`origins`), and
every deleted path the layer that deleted it, so errors and `llmpack explain` can
name the file that won.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generator.errors import Location
from generator.load import Layer, Path_


@dataclass(frozen=True)
class Merged:
    """The merged values of one release and where each value came from."""

    data: dict[str, Any]
    origins: dict[Path_, Location]
    deletions: dict[Path_, Location]

    def locate(self, path: Sequence[str | int]) -> Location | None:
        """The place that set `path`, else the nearest ancestor's place, else a deletion's."""
        path = tuple(path)
        for end in range(len(path), 0, -1):
            prefix = path[:end]
            if prefix in self.origins:
                return self.origins[prefix]
            if prefix in self.deletions:
                return self.deletions[prefix]
        return None


def merge(layers: Sequence[Layer], base: Merged | None = None) -> Merged:
    """The layers merged in order; `base`: the merge of the layers that come before them (a fleet's
    releases share the chart's defaults and the environment's values: the pipeline merges those once
    and each release's own layers onto a copy)."""
    data: dict[str, Any] = _copy(base.data) if base else {}
    origins = dict(base.origins) if base else {}
    deletions = dict(base.deletions) if base else {}
    for layer in layers:
        _merge_map(data, layer.data, (), layer, origins, deletions)
    return Merged(data, origins, deletions)


def _merge_map(target: dict[str, Any], source: dict[str, Any], path: Path_, layer: Layer,
               origins: dict[Path_, Location], deletions: dict[Path_, Location]) -> None:
    for key, value in source.items():
        here = (*path, key)
        old = target.get(key)
        if value is None:
            if key in target:
                del target[key]
                _forget(origins, here, old)
            deletions[here] = layer.location(here)
            continue
        deletions.pop(here, None)
        if isinstance(value, dict) and isinstance(old, dict):
            origins[here] = layer.location(here)
            _merge_map(target[key], value, here, layer, origins, deletions)
            continue
        _forget(origins, here, old)
        target[key] = _copy(value)
        _remember(origins, value, here, layer)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _remember(origins: dict[Path_, Location], value: Any, path: Path_, layer: Layer) -> None:
    origins[path] = layer.location(path)
    if isinstance(value, dict):
        for key, item in value.items():
            _remember(origins, item, (*path, key), layer)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _remember(origins, item, (*path, index), layer)


def _forget(origins: dict[Path_, Location], path: Path_, old: Any) -> None:
    """Drop the origins of `path` and, when it held a mapping or list, of all below it."""
    origins.pop(path, None)
    if isinstance(old, (dict, list)):
        depth = len(path)
        for known in [p for p in origins if p[:depth] == path]:
            del origins[known]


def explain(layers: Sequence[Layer], path: Sequence[str | int]) -> list[tuple[Location, str, Any]]:
    """Each layer that touches `path`, in order: (where, "set" | "delete" | "merge", value)."""
    steps: list[tuple[Location, str, Any]] = []
    path = tuple(path)
    for layer in layers:
        node: Any = layer.data
        for depth, key in enumerate(path):
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
            here = path[: depth + 1]
            if node is None:
                steps.append((layer.location(here), "delete", None))
                break
            if here == path:
                action = "merge" if isinstance(node, dict) else "set"
                steps.append((layer.location(here), action, node))
            elif not isinstance(node, dict):
                steps.append((layer.location(here), "set", node))
                break
    return steps
