"""Values files are read strictly: YAML 1.2 scalars, no anchors/aliases/tags/duplicates, capped size and depth."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import FileError, LoadError
from generator.load import MAX_DEPTH, MAX_FILE_BYTES, load_file, parse_set, parse_text


@pytest.mark.parametrize(("text", "value"), [
    ("v: yes", "yes"), ("v: on", "on"), ("v: y", "y"), ("v: NO", "NO"),
    ("v: 0777", 777), ("v: 0o17", 15), ("v: 0x1f", 31), ("v: 12:30", "12:30"),
    ("v: 1e3", 1000.0), ("v: 0.20", 0.2), ('v: "0.20"', "0.20"), ("v: ~", None), ("v: null", None),
    ("v:", None), ("v: true", True), ("v: False", False), ("v: '{{ 7*7 }}'", "{{ 7*7 }}"),
    ("v: !!str 5", "5"), ("v: 2024-01-01", "2024-01-01"), ("%YAML 1.2\n---\nv: yes", "yes"),
    ("v: 9223372036854775807", 2**63 - 1), ("v: -9223372036854775808", -(2**63)),
])
def test_plain_scalars_follow_yaml_1_2_core(text: str, value: object) -> None:
    data = parse_text(text, "f.yaml").data
    assert data == {"v": value} and type(data["v"]) is type(value)


def test_lines_are_recorded_for_every_path() -> None:
    layer = parse_text("a:\n  b: 1\n  c:\n    - x\n    - {d: 2}\n", "f.yaml")
    assert layer.lines == {("a",): 1, ("a", "b"): 2, ("a", "c"): 3, ("a", "c", 0): 4, ("a", "c", 1): 5,
                           ("a", "c", 1, "d"): 5}
    assert str(layer.location(("a", "c", 1))) == "f.yaml:5"


@pytest.mark.parametrize(("text", "message"), [
    ("a: &x 1\nb: *x\n", "f.yaml:1: anchors (&x) are not allowed in values files; write the value out"),
    ("a: 1\na: 2\n", "f.yaml:2: duplicate key 'a' (first set on line 1)"),
    ("a: !!python/object:os.system x\n", "f.yaml:1: tag 'tag:yaml.org,2002:python/object:os.system' is not "
                                         "allowed in values files"),
    ("a: !custom x\n", "f.yaml:1: tag '!custom' is not allowed in values files"),
    ("1: x\n", "f.yaml:1: keys must be strings; got 1; quote the key"),
    ("? [a]\n: x\n", "f.yaml:1: keys must be strings; got a mapping or list; quote the key"),
    ("- a\n", "f.yaml:1: the top level of a values file must be a mapping of keys"),
    ("a: 1\n---\nb: 2\n", "f.yaml:2: a values file holds one YAML document; found a second '---'"),
    ("a: [1\n", "f.yaml:2: YAML syntax error: did not find expected ',' or ']'"),
    ("a:\n\tb: 1\n", "f.yaml:2: YAML syntax error: found character that cannot start any token (a tab indents "
                       "this line: YAML indents with spaces only)"),
    ("a: .inf\n", "f.yaml:1: .inf is not a usable number; quote it if it is meant as text"),
    ("a: !!int x\n", "f.yaml:1: value 'x' does not match its tag tag:yaml.org,2002:int"),
    ("a: \"x\x00\"\n", "f.yaml:1: NUL character in file"),
    ("%YAML 1.1\n---\na: 1\n", "f.yaml:1: %YAML 1.1: values files are read by YAML 1.2 rules (yes is text, "
                               "0777 is 777); remove the directive"),
    ("%TAG !e! tag:example.com:\n---\na: 1\n", "f.yaml:1: %TAG directives are not allowed in values files; "
                                              "remove them"),
    ("a: " + "1" * 5000 + "\n", "f.yaml:1: 11111111111111111111... (5000 characters) is too large an integer "
                              "(Kubernetes reads 64-bit integers); quote it if it is meant as text"),
    ("a: 9223372036854775808\n", "f.yaml:1: 9223372036854775808 is too large an integer (Kubernetes reads 64-bit "
                                "integers); quote it if it is meant as text"),
])
def test_refused_with_location(text: str, message: str) -> None:
    with pytest.raises(LoadError) as caught:
        parse_text(text, "f.yaml")
    assert str(caught.value) == message


def test_alias_bomb_is_refused_at_the_first_anchor() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    with pytest.raises(LoadError, match=r"f.yaml:1: anchors \(&a\)"):
        parse_text(bomb, "f.yaml")


def test_deep_nesting_is_refused_without_recursion() -> None:
    text = "a: " + "[" * 1000 + "]" * 1000 + "\n"
    with pytest.raises(LoadError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        parse_text(text, "f.yaml")


def test_large_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (10 * 1024 * 1024) + b"\n")
    with pytest.raises(FileError, match=r"file is 10\.0 MiB; values files are limited to 1 MiB"):
        load_file(big, "big.yaml")
    assert MAX_FILE_BYTES == 1024 * 1024


def test_non_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nname: caf\xe9\n")
    with pytest.raises(FileError) as caught:
        load_file(path, "latin1.yaml")
    assert str(caught.value) == "latin1.yaml:2: not UTF-8 text (byte 0xe9 at offset 14)"


def test_empty_file_is_an_empty_layer() -> None:
    assert parse_text("# only a comment\n", "f.yaml").data == {}


@pytest.mark.parametrize(("flag", "data"), [
    ("workerSpec.size=2", {"workerSpec": {"size": 2}}),
    ('kserve.version="0.20"', {"kserve": {"version": "0.20"}}),
    ("labels.example\\.com/team=ml", {"labels": {"example.com/team": "ml"}}),
    ("pvc.storageClassName=", {"pvc": {"storageClassName": ""}}),
    ("workerSpec=null", {"workerSpec": None}),
    ("model.args=[--max-model-len=4096]", {"model": {"args": ["--max-model-len=4096"]}}),
])
def test_set_flags(flag: str, data: dict[str, object]) -> None:
    assert parse_set(flag).data == data
