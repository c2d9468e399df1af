"""The compiled yes/no validator agrees with jsonschema on every values tree, valid or not."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from test_fuzz import edits, nest

from generator.compiled_schema import compiled
from generator.load import Layer, load_file
from generator.merge import merge
from generator.validate import _validator
from helpers import REPO

SCHEMA = (REPO / "schemas" / "values.schema.json").resolve()
DEFAULTS = load_file(REPO / "charts" / "kserve-multinode" / "values.yaml", "values.yaml")


def agree(data: dict[str, Any]) -> None:
    fast = compiled(SCHEMA)(data)
    full = not any(True for _ in _validator(SCHEMA).iter_errors(data))
    assert fast == full, (fast, full, data)


@settings(max_examples=600, deadline=None)
@given(edits)
def test_compiled_validator_agrees_with_jsonschema(edits_: list[Any]) -> None:
    agree(merge([DEFAULTS, Layer("fuzz", nest(edits_))]).data)


def test_agreement_on_the_example_environments_and_tricky_values() -> None:
    agree(merge([DEFAULTS]).data)
    tricky: dict[str, Any]
    for tricky in ({"kserve": {"version": 0.2}}, {"workerSpec": {"size": 1.0}}, {"workerSpec": {"size": True}},
                   {"model": {"revision": "main\n"}}, {"vllm": {"gpuMemoryUtilization": 1}},
                   {"model": {"architecture": {"hiddenSize": 1}}}, {"gpu": {"memory": "1.5Gi"}},
                   {"pvc": {"accessModes": []}}, {"labels": {"a": 1}}):
        agree(merge([DEFAULTS, Layer("t", tricky)]).data)
