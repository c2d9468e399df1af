"""The caches that make validation cheap are exact: smaller schemas give kubeconform's very findings,
a remembered verdict is used only for the same object bytes, schemas and binary (one changed byte
of a CRD validates again), and a failure remembered reports the same located findings."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import kubeconform, schemas, sharing, templatecache, verdicts
from generator.check import SchemaCheck
from generator.crds import SchemaSources
from generator.errors import CheckError
from generator.pipeline import build
from generator.project import Extras, Project
from generator.schemas import SchemaSet, convert_crd
from helpers import REPO, ProjectFactory, crd_dir, kserve_release

KSERVE = "0.20.0"


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real kubeconform behind a script that logs each run (LLMPACK_KUBECONFORM points at it)."""
    return wrapper(tmp_path, monkeypatch, "one")


@functools.cache
def real_kubeconform() -> Path:
    return kubeconform.find(REPO)


def wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str) -> Path:
    log = tmp_path / f"runs-{label}.log"
    script = tmp_path / f"kubeconform-{label}"
    script.write_text(f'#!/bin/sh\n# {label}\necho run >> "{log}"\nexec "{real_kubeconform()}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("LLMPACK_KUBECONFORM", str(script))
    log.write_text("")
    return log


def runs(log: Path) -> int:
    return len(log.read_text().splitlines())


def objects(*bundles: tuple[str, tuple[str, ...]]) -> list[str]:
    """The texts of the core and KServe objects of example bundles."""
    texts = []
    for env, sets in bundles:
        texts += [f.text for f in build(Project.at(REPO), env, Extras(sets=sets)).files
                  if f.key is not None and "." not in f.api_version.partition("/")[0].replace("serving.kserve.io", "")]
    return texts


def mutations(text: str) -> list[str]:
    """The object as rendered and three broken copies: several errors inside one container (inside a
    shared definition), errors at the top, and an apiVersion no schema has."""
    obj = yaml.safe_load(text)
    broken = []
    containers = list(_containers(copy.deepcopy(obj)))
    if containers:
        first, last = containers[0][0][0], containers[-1][0][0]
        first.update(bogus=1, image=5)
        last["resources"] = "x"
        last.setdefault("ports", []).append({"containerPort": "80", "what": True})
        broken.append(containers[0][1])
    top = copy.deepcopy(obj)
    top.setdefault("spec", {})["nope"] = {"a": 1}
    top["metadata"]["labels"] = {"a": 5}
    other = copy.deepcopy(obj)
    other["apiVersion"] += "x"
    return [text, *(yaml.safe_dump(o) for o in [*broken, top, other])]


def _containers(obj: Any, root: Any = None) -> Any:
    root = obj if root is None else root
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "containers" and isinstance(value, list) and value:
                yield value, root
            else:
                yield from _containers(value, root)
    elif isinstance(obj, list):
        for value in obj:
            yield from _containers(value, root)


def plain(found: SchemaSet, folder: Path) -> SchemaSet:
    """The same schemas as llmpack wrote them before sharing.py: each CRD as convert_crd gives it,
    and kubernetes-validate's files referring to its whole _definitions.json."""
    for path in sorted((crd_dir() / "kserve" / f"v{KSERVE}").glob("*.yaml")):
        for (group, kind, version), schema in convert_crd(yaml.load(path.read_text(), Loader=yaml.CSafeLoader)).items():
            target = folder / "crds" / group / f"{kind.lower()}_{version}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema))
    name = f"v{found.kubernetes_version}-local-strict"
    source = schemas._kubernetes_validate_dir() / "kubernetes-json-schema" / name
    (folder / "core" / name).mkdir(parents=True)
    for path in source.glob("*.json"):
        doc = json.loads(path.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
        doc.pop("$id", None)
        (folder / "core" / name / path.name).write_text(json.dumps(doc))
    return SchemaSet(found.kubernetes_version, folder / "core", folder / "crds", found.kinds)


def test_shared_schemas_give_kubeconform_the_same_findings(tmp_path: Path, schema_cache: Path) -> None:
    kserve_release(KSERVE)
    shared = schemas.schema_set(SchemaSources((crd_dir(),), schema_cache), KSERVE, "1.33", {"serving.kserve.io"})
    originals = objects(("prod", ()), ("dev", ('kserve.version="0.20"', "target=raw")))
    texts = [m for text in originals for m in mutations(text)]
    binary = kubeconform.find(REPO)
    found = kubeconform.verdicts(binary, shared, texts)
    assert found == kubeconform.verdicts(binary, plain(shared, tmp_path), texts)
    assert [not v for v in found] == [text in originals for text in texts], "valid as rendered, invalid broken"
    assert any(len(v) >= 4 for v in found), "several problems in one object are reported one by one"


def inline(node: Any, definitions: dict[str, Any], prefix: str) -> Any:
    """`node` with every reference into `definitions` replaced by what it refers to."""
    if isinstance(node, list):
        return [inline(item, definitions, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    out = {key: inline(value, definitions, prefix) for key, value in node.items() if key != "$ref" or
           not (isinstance(ref, str) and ref.startswith(prefix))}
    if "$ref" in out or not isinstance(ref, str):
        return out
    target = inline(definitions[ref.removeprefix(prefix)], definitions, prefix)
    return {**out, "$inlined": target} if out else target


def test_sharing_only_moves_sub_schemas() -> None:
    kserve_release(KSERVE)
    path = crd_dir() / "kserve" / f"v{KSERVE}" / "serving.kserve.io_inferenceservices.yaml"
    [schema] = convert_crd(yaml.load(path.read_text(), Loader=yaml.CSafeLoader)).values()
    shared = sharing.share(sharing.slim(schema))
    definitions = shared.pop("definitions")
    assert len(json.dumps(shared)) + len(json.dumps(definitions)) < len(json.dumps(schema)) / 5
    assert inline(shared, definitions, "#/definitions/") == sharing.slim(schema)


def test_slim_keeps_a_property_named_description() -> None:
    schema = {"type": "object", "description": "a thing", "x-kubernetes-map-type": "atomic",
              "properties": {"description": {"type": "string", "description": "its text"}}}
    assert sharing.slim(schema) == {"type": "object", "properties": {"description": {"type": "string"}}}


def test_a_core_kind_carries_the_definitions_it_reaches() -> None:
    source = schemas._kubernetes_validate_dir() / "kubernetes-json-schema" / "v1.33.0-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    for name in ("job-batch-v1.json", "persistentvolumeclaim-v1.json", "deployment-apps-v1.json"):
        doc = json.loads((source / name).read_text())
        own = sharing.self_contained(doc, definitions, "/api/_definitions.json#/$defs/")
        assert set(own["$defs"]) < set(definitions)
        slimmed = {key: sharing.slim(value) for key, value in definitions.items()}
        local = sharing.slim(doc, lambda ref: ref.replace("/api/_definitions.json#", "#"))
        expected = inline(local, slimmed, "#/$defs/")
        assert inline({k: v for k, v in own.items() if k != "$defs"}, own["$defs"], "#/$defs/") == expected


def check_with(folder: Path, cache: Path) -> SchemaCheck:
    return SchemaCheck(SchemaSources((folder,), cache), (REPO,))


def test_validated_objects_are_not_validated_again(make_project: ProjectFactory, schema_check: SchemaCheck,
                                                   counted: Path) -> None:
    project = make_project("")
    first = build(project, "test", schemas=schema_check)
    assert runs(counted) == 1
    again = build(project, "test", schemas=schema_check)
    assert runs(counted) == 1 and again.validated == first.validated
    build(project, "test", Extras(sets=("workerSpec.size=3",)), schema_check)
    assert runs(counted) == 2, "changed objects are validated"


def test_one_changed_byte_of_a_crd_validates_again(make_project: ProjectFactory, tmp_path: Path,
                                                   schema_cache: Path, counted: Path) -> None:
    folder = tmp_path / "crds" / "kserve" / f"v{KSERVE}"
    shutil.copytree(kserve_release(KSERVE), folder)
    project = make_project('kserve: {version: "0.20"}')
    build(project, "test", schemas=check_with(tmp_path / "crds", schema_cache))
    build(project, "test", schemas=check_with(tmp_path / "crds", schema_cache))
    assert runs(counted) == 1
    crd = folder / "serving.kserve.io_inferenceservices.yaml"
    text = crd.read_text()
    crd.write_text(text.replace("controller-gen.kubebuilder.io/version: v0.19.0",
                                "controller-gen.kubebuilder.io/version: v0.19.1", 1))
    assert len(crd.read_text()) == len(text) and crd.read_text() != text
    build(project, "test", schemas=check_with(tmp_path / "crds", schema_cache))
    assert runs(counted) == 2


def test_another_kubeconform_binary_validates_again(make_project: ProjectFactory, schema_check: SchemaCheck,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project("")
    first = wrapper(tmp_path, monkeypatch, "first")
    build(project, "test", schemas=schema_check)
    second = wrapper(tmp_path, monkeypatch, "second")
    build(project, "test", schemas=schema_check)
    assert (runs(first), runs(second)) == (1, 1)


def test_the_verdict_key_names_schemas_binary_and_arguments(schema_check: SchemaCheck,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    found = schemas.schema_set(schema_check.sources, KSERVE, "1.33", {"serving.kserve.io"})
    binary, cache = kubeconform.find(REPO), schema_check.sources.cache
    key = verdicts.key(binary, found, cache)
    other = SchemaSet(found.kubernetes_version, found.core.with_name(found.core.name + "x"), found.crds, found.kinds)
    assert verdicts.key(binary, other, cache) != key
    monkeypatch.setattr(kubeconform, "ARGS", (*kubeconform.ARGS, "-skip", "Job"))
    assert verdicts.key(binary, found, cache) != key


def test_a_remembered_failure_gives_the_same_located_findings(tmp_path: Path, schema_check: SchemaCheck,
                                                              counted: Path) -> None:
    shutil.copytree(REPO / "charts", tmp_path / "charts")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    (tmp_path / "overlays" / "test").mkdir(parents=True)
    (tmp_path / "overlays" / "test" / "values.yaml").write_text("")
    template = tmp_path / "charts/kserve-multinode/templates/storage/persistentvolumeclaim.yaml"
    template.write_text(template.read_text().replace("  accessModes:", "  accesModes:", 1))
    found = []
    for _ in range(2):
        with pytest.raises(CheckError) as caught:
            build(Project.at(tmp_path), "test", schemas=schema_check)
        found.append([str(f) for f in caught.value.findings])
    assert runs(counted) == 1
    assert found[0] == found[1] == ["rendered/test/huggingface-llama3/storage/persistentvolumeclaim.yaml: /spec: "
                                    "additional properties 'accesModes' not allowed"]


def test_a_changed_template_is_compiled_again(tmp_path: Path) -> None:
    shutil.copytree(REPO / "charts", tmp_path / "charts")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    (tmp_path / "overlays" / "test").mkdir(parents=True)
    (tmp_path / "overlays" / "test" / "values.yaml").write_text("")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLMPACK_CACHE_DIR": str(tmp_path / "cache")}

    def readme() -> str:
        done = subprocess.run([sys.executable, "-m", "generator", "-C", str(tmp_path), "render", "--env", "test",
                               "--no-crd-check", "-q"], capture_output=True, text=True, env=env, check=True)
        assert done.stderr == ""
        return (tmp_path / "rendered/test/huggingface-llama3/README.md").read_text()

    before = readme()
    assert list((tmp_path / "cache" / "jinja").rglob("*.bc")), "the compiled templates are kept"
    template = tmp_path / "charts/kserve-multinode/templates/README.md"
    template.write_text(template.read_text() + "\nOne more line.\n")
    assert readme() == before.rstrip("\n") + "\n\nOne more line.\n"


def test_the_compiled_templates_depend_on_the_environment() -> None:
    import jinja2

    env = jinja2.Environment(keep_trailing_newline=True)
    plain_print = templatecache.fingerprint(env)
    env.filters["q"] = str
    assert templatecache.fingerprint(env) != plain_print
    assert templatecache.fingerprint(jinja2.Environment(keep_trailing_newline=False)) != plain_print
