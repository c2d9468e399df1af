"""Whatever llmpack writes, a YAML 1.1 reader that takes y/n as booleans (Kubernetes) and a
YAML 1.2 reader read back exactly: strings stay strings, byte for byte."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from generator import emit
from helpers import kubernetes_read

TRICKY = ["y", "n", "yes", "NO", "on", "off", "~", "null", "0777", "012", "12:30", "1e3", ".inf", "0x1f",
          "-", "- a", ": x", "#x", "a #b", "[x]", "{x}", "*a", "&a", "!tag", "%x", "@x", "`x", "'", '"',
          "\\", "x\n- name: LD_PRELOAD\n  value: /evil.so", "a\u2028b", "a\u2029b", "a\x85b", " lead", "trail ",
          "\ttab", "x\r\ny", "{{ 7*7 }}", "line1\nline2\n", "line1\n\n", "\n", "", "é ü 日本 🙂", "\x7f\x1b"]

scalars = st.one_of(
    st.sampled_from(TRICKY), st.text(), st.integers(-(2**53), 2**53), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
keys = st.one_of(st.sampled_from(TRICKY), st.text(min_size=1))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=25)




def yaml12_read(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def test_tricky_strings_read_back_exactly() -> None:
    doc = {"env": [{"name": s, "value": s} for s in TRICKY]}
    assert kubernetes_read(emit.dump(doc)) == doc
    assert yaml12_read(emit.dump(doc)) == doc


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_document_reads_back_exactly(doc: Any) -> None:
    wrapped = {"root": doc}
    assert kubernetes_read(emit.dump(wrapped)) == wrapped
    assert yaml12_read(emit.dump(wrapped)) == wrapped


def test_scripts_are_literal_blocks_and_keys_stay_plain() -> None:
    text = emit.dump({"args": ["set -e\necho hi\n"], "y": "n", "apiVersion": "v1"})
    assert text == 'apiVersion: "v1"\nargs:\n  - |\n    set -e\n    echo hi\n"y": "n"\n'


def test_output_does_not_depend_on_key_order() -> None:
    assert emit.dump({"b": 1, "a": {"d": 2, "c": 3}}) == emit.dump({"a": {"c": 3, "d": 2}, "b": 1})
