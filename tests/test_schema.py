"""The chart's defaults satisfy the schema, and every key a template reads is declared in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator.load import load_file
from generator.merge import merge
from generator.plan import plan
from generator.project import Project, releases
from generator.render import Chart, render
from generator.validate import validate
from helpers import ProjectFactory

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schemas" / "values.schema.json"


def test_chart_defaults_satisfy_the_schema() -> None:
    defaults = load_file(REPO / "charts/kserve-multinode/values.yaml", "values.yaml")
    validate(merge([defaults]), SCHEMA)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(json.loads(SCHEMA.read_text()))


class Recording(dict[str, Any]):
    """A dict that records every key path read through it."""

    def __init__(self, data: dict[str, Any], path: tuple[str, ...], seen: set[tuple[str, ...]]) -> None:
        super().__init__(data)
        self.path, self.seen = path, seen

    def __getitem__(self, key: str) -> Any:
        here = (*self.path, key)
        self.seen.add(here)
        value = super().__getitem__(key)
        return Recording(value, here, self.seen) if isinstance(value, dict) else value

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            return default
        return self[key]


def declared(schema: dict[str, Any], path: tuple[str, ...], root: dict[str, Any]) -> bool:
    node = schema
    for key in path:
        while "$ref" in node:
            node = root["$defs"][node["$ref"].split("/")[-1]]
        if key in node.get("properties", {}):
            node = node["properties"][key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


VARIANTS = [
    "",
    "network: {socketIfname: eth0}\n"
    "scheduling: {nodeSelector: {gpu: a100}, tolerations: [{key: gpu, operator: Exists}]}",
    "download: {tokenSecret: null, image: python:3.12}\npvc: {storageClassName: null}",
    "runtime: {create: false, name: kserve-huggingfaceserver-multinode}",
    'kserve: {version: "0.16"}\nmodel: {storageUri: "oci://r/m:1"}\ndownload: {enabled: false}\npvc: {create: false}',
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_key_the_templates_read_is_in_the_schema(make_project: ProjectFactory, variant: str) -> None:
    project: Project = make_project(variant)
    schema = json.loads(SCHEMA.read_text())
    seen: set[tuple[str, ...]] = set()
    for release in releases(project, "test"):
        merged = merge(release.layers)
        planned = plan(merged, release.name, roots=(project.root, project.chart_dir))
        render(Chart(project.chart_dir), Recording(merged.data, (), seen), planned, "")
    assert seen, "the recorder saw no reads"
    undeclared = sorted(".".join(p) for p in seen if not declared(schema, p, schema))
    assert undeclared == []
