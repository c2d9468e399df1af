"""What a reviewer needs from a change to rendered/ENV, as Markdown for a pull request.

Objects are matched by kind, namespace and name; changed ones list their changed fields
(lists of named items, such as containers and env, are matched by name). Changes that
matter in production get a risk label. The unified YAML diff follows, collapsed.
"""

from __future__ import annotations

import difflib
import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import layout, quantity
from generator.errors import UsageError

ObjectKey = tuple[str, str, str]   # kind, namespace, name
MAX_VALUE = 80


@dataclass(frozen=True)
class Side:
    """One side of the comparison: file path -> text, and the objects parsed from them."""

    files: dict[str, str]
    objects: dict[ObjectKey, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, files: Mapping[str, str]) -> Side:
        import yaml

        objects = {}
        for path, text in sorted(files.items()):
            if not path.endswith(".yaml") or path.endswith("kustomization.yaml"):
                continue
            obj = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
            if isinstance(obj, dict) and "kind" in obj:
                meta = obj.get("metadata") or {}
                objects[(str(obj["kind"]), str(meta.get("namespace", "")), str(meta.get("name")))] = (path, obj)
        return cls(dict(files), objects)


def files_at(root: Path, ref: str, folder: str) -> dict[str, str]:
    """Files below `folder` (relative to `root`) as committed at git `ref`; {} if it did not exist."""
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, errors="replace",
                                  check=False)
        except OSError as err:
            raise UsageError(f"cannot run git ({err.strerror}): llmpack diff needs git on PATH") from None
        if done.returncode != 0:
            raise UsageError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    top = Path(git("rev-parse", "--show-toplevel").strip())
    prefix = (root.resolve() / folder).relative_to(top.resolve()).as_posix()
    try:
        git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except UsageError:
        raise UsageError(f"--base {ref!r} is not a commit of the git repository at {top}") from None
    names = [n for n in git("ls-tree", "-r", "--name-only", ref, "--", prefix).splitlines() if n]
    return {n[len(prefix) + 1:]: git("show", f"{ref}:{n}") for n in names}


def markdown(env: str, base: str, old: Side, new: Side, folder: str) -> str:
    """The review comment; empty when nothing changed."""
    if old.files == new.files:
        return ""
    added = sorted(set(new.objects) - set(old.objects))
    removed = sorted(set(old.objects) - set(new.objects))
    changed = sorted(k for k in set(old.objects) & set(new.objects) if old.objects[k][1] != new.objects[k][1])
    lines = [f"### llmpack: `{folder}` against `{base}`", ""]
    risks = list(_risks(old, new))
    if risks:
        lines += ["**Risks**", ""] + [f"- :warning: {risk}" for risk in risks] + [""]
    rows = [("added", k, new.objects[k][0]) for k in added] + [("removed", k, old.objects[k][0]) for k in removed] \
        + [("changed", k, new.objects[k][0]) for k in changed]
    if rows:
        lines += ["| change | object | file |", "| --- | --- | --- |"]
        lines += [f"| {what} | {_name(key)} | `{folder}/{path}` |" for what, key, path in rows]
        lines.append("")
    for key in changed:
        lines += [f"**{_name(key)}**", ""]
        lines += [f"- `{path}`: {change}" for path, change in _field_changes(old.objects[key][1],
                                                                          new.objects[key][1])]
        lines.append("")
    unified = _unified(old.files, new.files, folder)
    lines += [f"<details><summary>Unified diff ({len(unified)} lines)</summary>", "", "```diff", *unified, "```",
              "", "</details>"]
    return "\n".join(lines) + "\n"


def _name(key: ObjectKey) -> str:
    kind, namespace, name = key
    return f"{kind} `{namespace + '/' if namespace else ''}{name}`"


def _unified(old: Mapping[str, str], new: Mapping[str, str], folder: str) -> list[str]:
    out: list[str] = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            out += difflib.unified_diff((old.get(path) or "").splitlines(), (new.get(path) or "").splitlines(),
                                        f"a/{folder}/{path}", f"b/{folder}/{path}", lineterm="")
    return out


def _keyed(value: Any) -> Any:
    """Lists of named items become mappings by name, so a reordering or insertion reads well."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value) \
            and len({v["name"] for v in value}) == len(value):
        return {f"[{v['name']}]": _keyed(v) for v in value}
    if isinstance(value, dict):
        return {k: _keyed(v) for k, v in value.items()}
    return value


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{path}{key}" if key.startswith("[") else f"{path}/{key}")
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}/{index}")
    else:
        yield path or "/", value


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    before, after = dict(_flatten(_keyed(old))), dict(_flatten(_keyed(new)))
    changes = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changes.append((path, f"removed (was {_show(before[path])})"))
        elif path not in before:
            changes.append((path, f"added {_show(after[path])}"))
        elif before[path] != after[path]:
            changes.append((path, _change(before[path], after[path])))
    return changes


def _change(old: Any, new: Any) -> str:
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0))
        plus = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
        minus = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
        return f"text changed (+{plus} -{minus} lines, see the unified diff)"
    return f"{_show(old)} → {_show(new)}"


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) > MAX_VALUE:
        text = text[: MAX_VALUE - 3] + "..."
    return f"`{text}`"


@dataclass(frozen=True)
class _Facts:
    """What the risk labels compare, per release."""

    parallel: tuple[int, int] | None = None
    model: str | None = None
    images: frozenset[str] = frozenset()
    gpus: int = 0


def _release_facts(side: Side) -> dict[str, _Facts]:
    found: dict[str, dict[str, Any]] = {}
    for _, obj in side.objects.values():
        release = ((obj.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/instance")
        if not release:
            continue
        facts = found.setdefault(release, {"images": set(), "gpus": 0})
        for pod in _pods(obj):
            for container in pod.get("containers") or []:
                if container.get("image"):
                    facts["images"].add(container["image"])
                env = {e.get("name"): e.get("value") for e in container.get("env") or []}
                if env.get("LLMPACK_MODEL"):
                    facts["model"] = env["LLMPACK_MODEL"]
                if env.get("TENSOR_PARALLEL_SIZE") and env.get("PIPELINE_PARALLEL_SIZE"):
                    facts["parallel"] = (int(env["TENSOR_PARALLEL_SIZE"]), int(env["PIPELINE_PARALLEL_SIZE"]))
        spec = obj.get("spec") or {}
        worker_spec = (spec.get("predictor") or {}).get("workerSpec") if obj["kind"] == "InferenceService" else None
        if worker_spec:
            facts["parallel"] = (int(worker_spec["tensorParallelSize"]), int(worker_spec["pipelineParallelSize"]))
    return {release: _Facts(f.get("parallel"), f.get("model"), frozenset(f["images"]),
                            f["parallel"][0] * f["parallel"][1] if f.get("parallel") else 0)
            for release, f in found.items()}


def _pods(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [pod for _, pod in layout.pod_specs(obj)]


def _risks(old: Side, new: Side) -> Iterator[str]:
    before, after = _release_facts(old), _release_facts(new)
    for release in sorted(set(before) & set(after)):
        a, b = before[release], after[release]
        if a.parallel and b.parallel and a.parallel != b.parallel:
            yield (f"**{release}: parallelism TP {a.parallel[0]} x PP {a.parallel[1]} → TP {b.parallel[0]} x PP "
                   f"{b.parallel[1]}**: every pod is recreated and the model reloads; KServe advises against "
                   "changing TP/PP in production")
        if a.model and b.model and a.model != b.model:
            yield f"**{release}: model revision {a.model} → {b.model}**: a new download Job runs before serving"
        if a.gpus != b.gpus:
            yield f"**{release}: GPUs {a.gpus} → {b.gpus}**: check that the cluster has them free"
        if a.images != b.images:
            yield (f"**{release}: image {', '.join(sorted(a.images - b.images)) or '-'} → "
                   f"{', '.join(sorted(b.images - a.images)) or '-'}**: every pod is recreated")
    yield from _storage_risks(old, new)


def _storage_risks(old: Side, new: Side) -> Iterator[str]:
    for key in sorted(set(old.objects) & set(new.objects)):
        if key[0] != "PersistentVolumeClaim":
            continue
        a, b = old.objects[key][1]["spec"], new.objects[key][1]["spec"]
        size_a = a.get("resources", {}).get("requests", {}).get("storage")
        size_b = b.get("resources", {}).get("requests", {}).get("storage")
        if size_a and size_b and quantity.value(size_b) < quantity.value(size_a):
            yield (f"**PVC {key[2]}: size {size_a} → {size_b}**: Kubernetes refuses to shrink a claim; "
                   "the sync will fail")
        if a.get("storageClassName") != b.get("storageClassName"):
            yield (f"**PVC {key[2]}: storage class {a.get('storageClassName')} → {b.get('storageClassName')}**: "
                   "storageClassName is immutable; the sync will fail unless the claim is re-created")
