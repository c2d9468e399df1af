"""The chart's defaults satisfy the schema, and every key a template reads is declared in it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from generator.gitops import render_gitops
from generator.load import load_file
from generator.merge import Merged, merge
from generator.plan import plan
from generator.project import Project, releases
from generator.render import Chart, render
from generator.validate import validate
from helpers import REPO, ProjectFactory

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
def test_every_key_the_plan_reads_is_in_the_schema(make_project: ProjectFactory, variant: str) -> None:
    """The plan stage reads the values (templates read only the plan): every key it reads is declared."""
    project: Project = make_project(variant)
    schema = json.loads(SCHEMA.read_text())
    seen: set[tuple[str, ...]] = set()
    for release in releases(project, "test"):
        merged = merge(release.layers)
        recorded = Merged(Recording(merged.data, (), seen), merged.origins, merged.deletions)
        planned = plan(recorded, release.name, roots=(project.root, project.chart_dir))
        render(Chart(project.chart_dir), planned, "")
        render_gitops(Chart(project.chart_dir), "test", recorded.data["gitops"], [f"{planned.release}/serving"],
                      [planned.namespace])
    assert seen, "the recorder saw no reads"
    undeclared = sorted(".".join(p) for p in seen if not declared(schema, p, schema))
    assert undeclared == []


def test_the_schema_lists_exactly_the_releases_and_gpus_llmpack_knows() -> None:
    done = subprocess.run([sys.executable, str(REPO / "tools/schema-enums"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
