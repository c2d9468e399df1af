"""The JSON Schemas kubeconform reads (part of the check stage).

- Core Kubernetes kinds: the pinned `kubernetes-validate` package ships kubeconform-named
  `-local-strict` schemas whose references point at `/api/_definitions.json` on a web
  host; llmpack copies one Kubernetes version of them into the cache with local references.
- Custom resources: llmpack converts CustomResourceDefinitions (found by crds.py) into one
  strict JSON Schema per kind and version.

Both are made smaller with the same checks (sharing.py): a core kind file holds only the
definitions it reaches, and a CRD's repeated sub-schemas are defined once; kubeconform then
compiles KServe's InferenceService in a tenth of the time.

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

from generator import crds, sharing, stamp
from generator.crds import SchemaSources
from generator.digests import Memo
from generator.errors import ToolError

CONVERTER_VERSION = "2"     # bump on any change to what the conversion writes: the caches rebuild
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

    @property
    def identity(self) -> str:
        """What kubeconform validates against, exactly: both folders are named by a digest of all
        their inputs (the CRD files' bytes, kubernetes-validate's files, the converter's version)."""
        return f"{self.core.name}/{self.crds.name}/{self.kubernetes_version}"


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


def _digest(cache: Path, paths: Iterable[Path], *extra: str) -> str:
    """A digest of the files' names and bytes (remembered by their stat: digests.py) and of `extra`."""
    memo = Memo(cache / "schemas" / "digests.json")
    digest = hashlib.sha256("\0".join(extra).encode())
    for path in paths:
        digest.update(f"{path.name}\0{memo.digest(path)}\0".encode())
    memo.save()
    return digest.hexdigest()[:20]


def _converted(cache: Path, files: list[Path]) -> tuple[Path, frozenset[tuple[str, str, str]]]:
    """Convert CRD files into kubeconform's layout, once per distinct input."""
    target = cache / "schemas" / f"crd-{_digest(cache, files, CONVERTER_VERSION)}"
    index = target / "index.json"
    if not index.is_file():
        schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
        for path in files:
            for doc in _crd_documents(path):
                for key, schema in convert_crd(doc).items():
                    if key in schemas:
                        raise ToolError(f"{path}: {key[1]} {key[0]}/{key[2]} is defined by two CRD files")
                    schemas[key] = sharing.share(sharing.slim(schema))
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
    """kubernetes-validate's schemas of one version in kubeconform's layout, each kind file with the
    definitions it reaches (a kind of another JSON Schema dialect keeps reading `_definitions.json`)."""
    package = _kubernetes_validate_dir()
    folder = f"v{kubernetes_version}-local-strict"
    source = package / "kubernetes-json-schema" / folder
    if not source.is_dir():
        known = sorted(p.name.split("-")[0] for p in (package / "kubernetes-json-schema").glob("*-local-strict"))
        raise ToolError(f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version}; "
                        f"kubernetes.version must be one of {', '.join(v.lstrip('v') for v in known)}")
    key = _digest(cache, _record(package), CONVERTER_VERSION, _package_version(), folder)
    target = cache / "schemas" / f"core-{key}"
    if not (target / folder / "_definitions.json").is_file():
        with stamp.unseen():     # named by the package's RECORD (an input): its files are not
            docs = _core_documents(source)
        _publish(target, {f"{folder}/{name}": json.dumps(doc) for name, doc in docs.items()})
    return target


def _core_documents(source: Path) -> dict[str, Any]:
    shared = json.loads((source / "_definitions.json").read_text(encoding="utf-8"))
    shared.pop("$id", None)
    definitions = shared.get("$defs") or {}
    docs = {"_definitions.json": sharing.slim(shared)}
    for path in sorted(source.glob("*.json")):
        if path.name == "_definitions.json":
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc.pop("$id", None)
        if doc.get("$schema") == shared.get("$schema"):
            docs[path.name] = sharing.self_contained(doc, definitions, _SHARED_REF)
        else:    # the definitions are read in their own dialect: keep them in their own file
            docs[path.name] = sharing.slim(doc, lambda ref: ref.replace(_SHARED_REF, "_definitions.json#/$defs/"))
    return docs


_SHARED_REF = "/api/_definitions.json#/$defs/"


def core_origin() -> str:
    """Where the core Kubernetes schemas come from, for the render report."""
    return f"core schemas of kubernetes-validate {_package_version()}"


def _package_version() -> str:
    dist = _dist_info(_kubernetes_validate_dir())
    if dist is not None:
        return dist.name.removesuffix(".dist-info").partition("-")[2]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubernetes-validate")
    except PackageNotFoundError:
        return "unknown"


def _record(package: Path) -> list[Path]:
    """pip's RECORD of the installed kubernetes-validate (the sha256 of each of its files): a reinstall
    with other files gives other converted schemas. Empty when there is none."""
    dist = _dist_info(package)
    return [dist / "RECORD"] if dist is not None and (dist / "RECORD").is_file() else []


def _dist_info(package: Path) -> Path | None:
    """The .dist-info folder beside the package (found without importlib.metadata, which is slow to import)."""
    found = list(package.parent.glob("kubernetes_validate-*.dist-info"))
    return found[0] if len(found) == 1 else None


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
