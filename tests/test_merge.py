"""The merge rule: maps merge, lists and scalars replace, null deletes; origins follow the winner."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from generator.load import Layer, parse_text
from generator.merge import explain, merge

keys = st.sampled_from(["a", "b", "c", "d"])
leaves = st.one_of(st.integers(0, 9), st.text(max_size=3), st.booleans())
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=12)
trees = st.dictionaries(keys, values, max_size=4)
with_nulls = st.recursive(st.one_of(leaves, st.none()), lambda inner: st.one_of(
    st.lists(leaves, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=12)
overlays = st.dictionaries(keys, with_nulls, max_size=4)


def layer(data: dict[str, Any], name: str = "l") -> Layer:
    return Layer(name, data)


@given(trees)
def test_empty_layers_are_identities(tree: dict[str, Any]) -> None:
    assert merge([layer({}), layer(tree)]).data == tree
    assert merge([layer(tree), layer({})]).data == tree


@given(trees)
def test_merge_is_idempotent(tree: dict[str, Any]) -> None:
    assert merge([layer(tree), layer(tree)]).data == tree


@given(trees, overlays)
def test_later_layer_wins_for_every_key_it_sets(base: dict[str, Any], over: dict[str, Any]) -> None:
    merged = merge([layer(base), layer(over)]).data
    for key, value in over.items():
        if value is None:
            assert key not in merged                      # null deletes
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            assert set(merged[key]) >= {k for k, v in value.items() if v is not None}   # maps merge
            assert all(k in merged[key] for k in base[key] if k not in value)           # ... keeping the rest
        else:
            assert merged[key] == value                   # lists and scalars replace
    for key in base:
        if key not in over:
            assert merged[key] == base[key]


@given(trees, overlays, overlays)
def test_inputs_are_never_modified(base: dict[str, Any], one: dict[str, Any], two: dict[str, Any]) -> None:
    before = copy.deepcopy((base, one, two))
    merge([layer(base), layer(one), layer(two)])
    assert (base, one, two) == before


@given(trees, overlays, overlays, st.integers(0, 3))
def test_merging_onto_the_merge_of_the_first_layers_is_merging_them_all(
        base: dict[str, Any], one: dict[str, Any], two: dict[str, Any], split: int) -> None:
    """What the pipeline does for a fleet: the shared layers merged once, each release's onto it; the
    shared merge is not changed by merging onto it."""
    layers = [layer(base, "base"), layer(one, "one"), layer(two, "two")]
    head = merge(layers[:split])
    kept = copy.deepcopy(head)
    assert merge(layers[split:], head) == merge(layers)
    assert head == kept


@given(trees, overlays)
def test_every_merged_path_has_an_origin_in_the_layer_that_set_it(base: dict[str, Any], over: dict[str, Any]) -> None:
    merged = merge([layer(base, "base"), layer(over, "over")])

    def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [prefix] if prefix else []
        if isinstance(node, dict):
            for k, v in node.items():
                found += paths(v, (*prefix, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                found += paths(v, (*prefix, i))
        return found

    assert set(paths(merged.data)) == set(merged.origins)


def test_origins_and_deletions_name_file_and_line() -> None:
    base = parse_text("pvc:\n  size: 50Gi\n  accessModes: [RWX]\n", "defaults.yaml")
    over = parse_text("pvc:\n  size: 10Gi\n  accessModes: null\n", "prod.yaml")
    merged = merge([base, over])
    assert merged.data == {"pvc": {"size": "10Gi"}}
    assert str(merged.origins[("pvc", "size")]) == "prod.yaml:2"
    assert str(merged.deletions[("pvc", "accessModes")]) == "prod.yaml:3"
    assert str(merged.locate(("pvc", "accessModes", 0))) == "prod.yaml:3"


def test_explain_lists_each_layer_that_touches_a_key() -> None:
    layers = [parse_text("a:\n  b: 1\n", "one.yaml"), parse_text("a: {c: 2}\n", "two.yaml"),
              parse_text("a:\n  b: null\n", "three.yaml")]
    steps = [(str(loc), action, value) for loc, action, value in explain(layers, ["a", "b"])]
    assert steps == [("one.yaml:2", "set", 1), ("three.yaml:2", "delete", None)]
