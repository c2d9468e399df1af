"""Where the JSON Schemas for kubeconform come from (part of the check stage).

- Core Kubernetes kinds: the pinned `kubernetes-validate` package ships kubeconform-named
  `-local-strict` schemas whose references point at `/api/_definitions.json` on a web
  host; llmpack copies one Kubernetes version of them into the cache with local references.
- Custom resources: llmpack converts CustomResourceDefinitions (a `--crd-dir`, or files
  fetched by `llmpack schemas fetch`) into one strict JSON Schema per kind and version.

Nothing derived from upstream files is committed: the cache lives in `.cache/` (git-ignored),
keyed by a digest of its inputs, and is rebuilt whenever they change.
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

from generator.errors import ToolError
from generator.releases import RELEASES

CONVERTER_VERSION = "1"
KSERVE_BASE_URL = "https://raw.githubusercontent.com/kserve/kserve"
# sha256 of config/crd/full/<file> at each KServe tag llmpack can fetch.
PINNED_KSERVE_CRDS: dict[str, dict[str, str]] = {
    "0.15.2": {
        "serving.kserve.io_inferenceservices.yaml": "43bcb3aef9c6308135ef122f48800230058b710eae98c26ff03da29940525e4e",
        "serving.kserve.io_servingruntimes.yaml": "361eb7b56c3335e114cec9edc22ca1b40029cf0d487dad5a366baccaf3c66cd6",
        "serving.kserve.io_clusterservingruntimes.yaml":
            "2f81f42bcc4949664e1d983712a9f16d60f8befe45a1993a934d4b952ad7f2b3",
    },
    "0.16.0": {
        "serving.kserve.io_inferenceservices.yaml": "7b57068f8bb0baa394c14bef83421a53a7be8e13335c31a4e55e32d9f549adb0",
        "serving.kserve.io_servingruntimes.yaml": "46d97ee5c3dc4f43671ca3a70002367880df3ad6e9cd7cda6903a394060348d2",
        "serving.kserve.io_clusterservingruntimes.yaml":
            "a86c160f1dd89c8b6d3d245c148537ed31a2b03c5c6fa5aa85b393ee4b6ff07a",
    },
    "0.18.1": {
        "serving.kserve.io_inferenceservices.yaml": "b6c30a83b771f791e5de3a30d46ddd2f44e3caeffdc8c132e7c8c145ab209dae",
        "serving.kserve.io_servingruntimes.yaml": "380a3e1e1444cef9b8b88819596692728868205a2147dc66423be469a4a7bbb1",
        "serving.kserve.io_clusterservingruntimes.yaml":
            "c6f6bbb1b4b11afd1e38bd6d7255a8795b86efa2b7d14946ccff9d23592e6846",
    },
    "0.20.0": {
        "serving.kserve.io_inferenceservices.yaml": "57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff",
        "serving.kserve.io_servingruntimes.yaml": "380a3e1e1444cef9b8b88819596692728868205a2147dc66423be469a4a7bbb1",
        "serving.kserve.io_clusterservingruntimes.yaml":
            "c6f6bbb1b4b11afd1e38bd6d7255a8795b86efa2b7d14946ccff9d23592e6846",
    },
}
CRD_SUFFIXES = (".yaml", ".yml", ".json")
CORE_TEMPLATE = "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
CRD_TEMPLATE = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"


@dataclass(frozen=True)
class SchemaSources:
    """CRD folders to search (in order) and the cache for converted and fetched schemas."""

    crd_dirs: tuple[Path, ...]
    cache: Path

    @property
    def fetched(self) -> Path:
        return self.cache / "crds"


@dataclass(frozen=True)
class SchemaSet:
    """Folders kubeconform reads: core kinds of one Kubernetes version, and converted CRDs."""

    kubernetes_version: str        # "1.33.0"
    core: Path
    crds: Path
    kinds: frozenset[tuple[str, str, str]]   # (group, kind, version) the CRD folder covers

    def locations(self) -> list[str]:
        return [str(self.core / CORE_TEMPLATE), str(self.crds / CRD_TEMPLATE)]


def schema_set(sources: SchemaSources, kserve_patch: str | None, kubernetes_minor: str) -> SchemaSet:
    """Schemas for one kubeconform run; `kserve_patch=None` when the objects use no KServe kind."""
    files = crd_files(sources, kserve_patch)
    crds, kinds = _converted(sources.cache, files)
    version = f"{kubernetes_minor}.0"
    return SchemaSet(version, core_schemas(sources.cache, version), crds, kinds)


def crd_files(sources: SchemaSources, kserve_patch: str | None) -> list[Path]:
    """The CRD files for one KServe release plus every non-KServe CRD of the first folder that has it."""
    searched = [*sources.crd_dirs, sources.fetched]
    if kserve_patch is None:
        return next((sorted(p for p in _files_below(f) if (f / "kserve") not in p.parents)
                     for f in sources.crd_dirs if f.is_dir()), [])
    for folder in searched:
        versioned = folder / "kserve"
        if versioned.is_dir():
            release = versioned / f"v{kserve_patch}"
            if release.is_dir():
                others = [p for p in _files_below(folder) if versioned not in p.parents]
                return sorted(_files_below(release)) + sorted(others)
            continue
        if folder.is_dir() and folder != sources.fetched:
            return sorted(_files_below(folder))   # a flat folder, e.g. the CRDs of one's cluster
    shown = ", ".join(str(f) for f in sources.crd_dirs) or "none given"
    raise ToolError(f"no CustomResourceDefinitions for KServe {kserve_patch} (CRD folders: {shown}; "
                    f"fetched: {sources.fetched}). Pass --crd-dir DIR (or set LLMPACK_CRD_DIR) to a folder "
                    f"holding kserve/v{kserve_patch}/*.yaml or the CRDs of your cluster, or run "
                    f"`llmpack schemas fetch --kserve-version {kserve_patch.rsplit('.', 1)[0]}` on a machine "
                    "with network access")


def _files_below(folder: Path) -> Iterable[Path]:
    return (p for p in folder.rglob("*") if p.is_file() and p.suffix in CRD_SUFFIXES)


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


def fetch_kserve(sources: SchemaSources, version: str, base_url: str = KSERVE_BASE_URL) -> Path:
    """Download the CRDs of a KServe release, check their pinned digests, store them in the cache."""
    import urllib.error
    import urllib.request

    release = RELEASES.get(version)
    patch = release.patch if release else version
    pinned = PINNED_KSERVE_CRDS.get(patch)
    if pinned is None:
        raise ToolError(f"llmpack has no pinned digests for KServe {patch} (it has "
                        f"{', '.join(sorted(PINNED_KSERVE_CRDS))}); download config/crd/full/ of that tag "
                        "yourself and pass --crd-dir")
    target = sources.fetched / "kserve" / f"v{patch}"
    files = {}
    for name, digest in pinned.items():
        url = f"{base_url.rstrip('/')}/v{patch}/config/crd/full/{name}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - https or loopback
                body: bytes = response.read()
        except (urllib.error.URLError, OSError) as err:
            raise ToolError(f"cannot download {url}: {getattr(err, 'reason', err)}") from None
        actual = hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise ToolError(f"{url} has sha256 {actual}, expected {digest}: refusing it (nothing was stored)")
        files[name] = body.decode("utf-8")
    shutil.rmtree(target, ignore_errors=True)
    _publish(target, files)
    return target
