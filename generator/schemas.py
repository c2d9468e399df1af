"""The JSON Schemas kubeconform reads (part of the check stage).

- Core Kubernetes kinds: the pinned `kubernetes-validate` package ships kubeconform-named
  `-local-strict` schemas whose references point at `/api/_definitions.json` on a web
  host; llmpack copies one Kubernetes version of them into the cache with local references.
- Custom resources: llmpack converts CustomResourceDefinitions (found by crds.py) into one
  strict JSON Schema per kind and version.

Nothing derived from upstream files is committed: the cache (crds.default_cache) holds it,
keyed by a digest of its inputs, and rebuilds it whenever they change.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import crds
from generator.crds import SchemaSources
from generator.errors import ToolError

CONVERTER_VERSION = "1"
CORE_TEMPLATE = "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
CRD_TEMPLATE = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"


@dataclass(frozen=True)
class SchemaSet:
    """Folders kubeconform reads: core kinds of one Kubernetes version, and converted CRDs."""

    kubernetes_version: str        # "1.33.0"
    core: Path
    crds: Path
    kinds: frozenset[tuple[str, str, str]]   # (group, kind, version) the CRD folder covers
    origins: tuple[str, ...] = ()            # where the CRDs came from, for the render report

    def locations(self) -> list[str]:
        return [str(self.core / CORE_TEMPLATE), str(self.crds / CRD_TEMPLATE)]


def schema_set(sources: SchemaSources, kserve_patch: str | None, kubernetes_minor: str,
               groups: Iterable[str] = ()) -> SchemaSet:
    """Schemas for one kubeconform run over objects of these API groups (`kserve_patch` None:
    no KServe kind among them)."""
    wanted = {g for g in groups if "." in g and not g.endswith(".k8s.io")}   # groups served by CRDs
    found = [crds.kserve_files(sources, kserve_patch)] if kserve_patch else []
    if wanted - {crds.KSERVE_GROUP}:
        found.append(crds.other_files(sources))
    folder, kinds = _converted(sources.cache, [path for part in found for path in part.files])
    covered = {group for group, _, _ in kinds}
    fetched = [crds.fetch(sources, pinned) for group in sorted(wanted - covered - {crds.KSERVE_GROUP})
               if (pinned := crds.pinned_for(group)) is not None]
    if fetched:
        found += fetched
        folder, kinds = _converted(sources.cache, [path for part in found for path in part.files])
    version = f"{kubernetes_minor}.0"
    origins = tuple(origin for part in found for origin in part.origins)
    return SchemaSet(version, core_schemas(sources.cache, version), folder, kinds, origins)


def _digest(paths: Iterable[Path], *extra: str) -> str:
    digest = hashlib.sha256("\0".join(extra).encode())
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _converted(cache: Path, files: list[Path]) -> tuple[Path, frozenset[tuple[str, str, str]]]:
    """Convert CRD files into kubeconform's layout, once per distinct input."""
    target = cache / "schemas" / f"crd-{_digest(files, CONVERTER_VERSION)}"
    index = target / "index.json"
    if not index.is_file():
        schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
        for path in files:
            for doc in _crd_documents(path):
                for key, schema in convert_crd(doc).items():
                    if key in schemas:
                        raise ToolError(f"{path}: {key[1]} {key[0]}/{key[2]} is defined by two CRD files")
                    schemas[key] = schema
        _publish(target, {f"{g}/{k.lower()}_{v}.json": json.dumps(s) for (g, k, v), s in schemas.items()}
                 | {"index.json": json.dumps(sorted(schemas))})
    kinds = frozenset(tuple(k) for k in json.loads(index.read_text()))
    return target, kinds


def _crd_documents(path: Path) -> Iterable[dict[str, Any]]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ToolError(f"{path}: not a readable CRD file: {err}") from None
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List":
            yield from (item for item in doc.get("items") or [] if item.get("kind") == "CustomResourceDefinition")
        elif doc.get("kind") == "CustomResourceDefinition":
            yield doc


def convert_crd(crd: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """One strict JSON Schema per served version: unknown fields are refused wherever the CRD
    does not say `x-kubernetes-preserve-unknown-fields`; int-or-string and nullable are spelled out."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    result = {}
    for version in spec.get("versions") or []:
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            continue
        converted = _strict(schema)
        converted.setdefault("properties", {})
        converted["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        converted["properties"]["kind"] = {"type": "string", "enum": [kind]}
        result[(group, kind, version["name"])] = converted
    return result


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def core_schemas(cache: Path, kubernetes_version: str) -> Path:
    """kubernetes-validate's schemas of one version with local references, in kubeconform's layout."""
    package = _kubernetes_validate_dir()
    folder = f"v{kubernetes_version}-local-strict"
    source = package / "kubernetes-json-schema" / folder
    if not source.is_dir():
        known = sorted(p.name.split("-")[0] for p in (package / "kubernetes-json-schema").glob("*-local-strict"))
        raise ToolError(f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version}; "
                        f"kubernetes.version must be one of {', '.join(v.lstrip('v') for v in known)}")
    target = cache / "schemas" / f"core-{_digest([], _package_version(), folder)}"
    if not (target / folder / "_definitions.json").is_file():
        texts = {}
        for path in source.glob("*.json"):
            text = path.read_text(encoding="utf-8").replace('"/api/_definitions.json#', '"_definitions.json#')
            doc = json.loads(text)
            doc.pop("$id", None)
            texts[f"{folder}/{path.name}"] = json.dumps(doc)
        _publish(target, texts)
    return target


def core_origin() -> str:
    """Where the core Kubernetes schemas come from, for the render report."""
    return f"core schemas of kubernetes-validate {_package_version()}"


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubernetes-validate")
    except PackageNotFoundError:
        return "unknown"


def _kubernetes_validate_dir() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise ToolError("the kubernetes-validate package (core Kubernetes schemas) is not installed: "
                        "run `make setup` or `pip install -c constraints.txt -e .`")
    return Path(spec.origin).parent


def _publish(target: Path, files: dict[str, str]) -> None:
    """Write a cache folder completely under a temporary name, then rename it into place."""
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    for name, text in files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    try:
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)   # another process published it first
        if not target.is_dir():
            raise
