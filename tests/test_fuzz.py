"""Generated values files never cause a traceback: the result is a bundle that passes every check,
or an error that names its file and line. `make fuzz` runs 10,000 fresh examples; `make test`
the same 200 every time (the profiles in conftest.py).

The schema check with kubeconform is left out here (one run takes about a second); the bundles that
pass are the ones every other check accepted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from generator import emit
from generator.errors import LlmpackError, LoadError, ValuesError
from generator.pipeline import build
from generator.project import Project
from helpers import REPO

EXAMPLES = int(os.environ.get("LLMPACK_FUZZ_EXAMPLES", "200"))
SCHEMA = json.loads((REPO / "schemas" / "values.schema.json").read_text())


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].split("/")[-1]]
    return node


def schema_paths(node: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every key path the schema declares, with its schema."""
    found = []
    for key, sub in (node.get("properties") or {}).items():
        sub = resolve(sub)
        found.append(((*prefix, key), sub))
        found += schema_paths(sub, (*prefix, key))
    return found


PATHS = schema_paths(SCHEMA)
TRICKY = ["y", "no", "0777", "12:30", "", " ", "a\nb", "\u2028", "{{ x }}", "hf_token", "pvc://c/p", "oci://r/m:1",
          "1", "0.20", "nvidia.com/gpu", "ReadWriteOnce", "24Gi", "-1", "raw", "kserve", "llama-3-8b", "H100",
          "TENSOR_PARALLEL_SIZE", "PIPELINE_PARALLEL_SIZE", "x" * 300]
scalars = st.one_of(st.sampled_from(TRICKY), st.text(max_size=20), st.integers(-5, 100), st.booleans(), st.none(),
                    st.floats(-10, 10, allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "value", "valueFrom", "limits", "requests", "cpu", "memory",
                                     "size", "enabled", "x"]), inner, max_size=3)), max_leaves=8)
PLAUSIBLE_STRINGS = ["y", "llm-serving", "a", "pvc://claim/models/x", "oci://r/m:1", "8Gi", "4", "500m", "main",
                     "meta-llama/Llama-3-8B", "nfs-client", "eth0", "hf-token", "HF_TOKEN", "10m", "llama-3-70b",
                     "registry.example/img:1", "https://git.example/x.git", "rendered", "--enable-prefix-caching"]


def plausible(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly values of the right type (so the plan and render stages run), sometimes anything."""
    if "enum" in schema:
        typed: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    else:
        kind = schema.get("type")
        kind = kind[0] if isinstance(kind, list) else kind
        typed = {"boolean": st.booleans(), "integer": st.integers(0, 70), "number": st.floats(0.05, 0.95),
                 "string": st.sampled_from(PLAUSIBLE_STRINGS + TRICKY),
                 "array": st.lists(st.sampled_from(PLAUSIBLE_STRINGS), max_size=3), "object": st.just({}),
                 }.get(kind or "", values)
    return st.one_of(typed, typed, typed, values)


edit = st.sampled_from(PATHS).flatmap(lambda item: st.tuples(st.just(item[0]), plausible(item[1])))
edits = st.lists(edit, min_size=1, max_size=6)


def nest(edits_: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, value in edits_:
        node = root
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[path[-1]] = value
    return root


@settings(max_examples=EXAMPLES)
@given(edits)
@example([(("scheduling", "nodeSelector"), None)])     # found by a fresh run: a template error at _pod.j2:78
def test_generated_values_give_a_bundle_or_a_located_error(tmp_path: Path, edits_: list[Any]) -> None:
    folder = tmp_path / "overlays" / "fuzz"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "values.yaml").write_text(emit.dump(nest(edits_)), encoding="utf-8")
    project = Project(tmp_path, REPO / "charts/kserve-multinode", REPO / "schemas/values.schema.json")
    try:
        bundle = build(project, "fuzz")
    except ValuesError as err:
        assert all(p.location is not None and p.location.source for p in err.problems), str(err)
    except LoadError as err:
        assert err.location.source
    except LlmpackError as err:   # CheckError: the rendered bundle broke a rule (a located finding)
        assert "rendered/fuzz/" in str(err), str(err)
    else:
        assert bundle.plans and all(f.text for f in bundle.files)
