"""`--set KEY=VALUE`: the value is one line holding one YAML flow value and nothing after it. A line
break, or text YAML would drop as a comment, is refused at the flag, never cut short (issue #13:
`--set $'name=abc\\nname: evil'` kept abc and dropped the rest; `--set name=#x` deleted the key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from catalogue import Case, run_cli

from generator.errors import LoadError, UsageError
from generator.load import parse_set

LINE_BREAK = "the value holds a line break"
COMMENT = "YAML would drop the rest as a comment"
SYNTAX = "YAML syntax error"

REFUSED: list[tuple[str, str]] = [
    # line breaks of every kind: one flag is one line
    ("abc\nname: evil", LINE_BREAK), ("abc\r\nx", LINE_BREAK), ("a\rb", LINE_BREAK), ("a\x85b", LINE_BREAK),
    ("a\u2028b", LINE_BREAK), ("a\u2029b", LINE_BREAK), ("\n", LINE_BREAK), ("abc\n", LINE_BREAK),
    ("[a,\nb]", LINE_BREAK), ('"a\nb"', LINE_BREAK), ("{a: 1,\n b: 2}", LINE_BREAK), ("x\n---\ny", LINE_BREAK),
    # comments that would swallow the value or its end
    ("#x", COMMENT), (" #x", COMMENT), ("abc #x", COMMENT), ("abc  # note", COMMENT), ("[a, b] # c", COMMENT),
    ("{a: 1} #c", COMMENT), ('"x" # c', COMMENT), ("'x' #c", COMMENT), ("1 #2", COMMENT), ("~ #", COMMENT),
    ("null # x", COMMENT), ("true #false", COMMENT), ("#", COMMENT), ("\t#x", COMMENT),
    # not one flow value
    ("[a, b", SYNTAX), ("{a: 1", SYNTAX), ("a: b", SYNTAX), ("- a", SYNTAX), ("]", SYNTAX), ("}", SYNTAX),
    ('"unterminated', SYNTAX), ("'x", SYNTAX), ("@x", SYNTAX), ("`x", SYNTAX), ("%x", SYNTAX), ("? x", SYNTAX),
    ("| x", SYNTAX), ("> x", SYNTAX), ("[a] b", SYNTAX), ("{a: 1} {b: 2}", SYNTAX),
    # what a values file refuses, a flag refuses too
    ("&a x", "anchors (&a) are not allowed"), ("*a", "aliases (*a) are not allowed"),
    ("!!python/object x", "is not allowed in values files"), ("!custom x", "is not allowed in values files"),
    ("!!int x", "does not match its tag"), ("a\x00b", "NUL character"), ("\x1b[31m", "unacceptable character"),
    ("[" * 40 + "x" + "]" * 40, "nesting deeper than 32 levels"),
    ("1" * 5000, "(5000 characters) is too large an integer"), ("0x" + "f" * 100, "is too large an integer"),
    ("-9223372036854775809", "is too large an integer"), ("9223372036854775808", "is too large an integer"),
    (".inf", "is not a usable number"), (".nan", "is not a usable number"), ("1e400", "too large a number"),
]

ACCEPTED: list[tuple[str, Any]] = [
    ("abc", "abc"), ('"#x"', "#x"), ("'a # b'", "a # b"), ("a#b", "a#b"), ("[a, b]", ["a", "b"]),
    ("{a: 1}", {"a": 1}), ("", ""), ("  ", ""), ("null", None), ("~", None), ('"a\\nb"', "a\nb"),
    ("1.0", 1.0), ("0777", 777), ("yes", "yes"), ("x:y", "x:y"), ("http://a:b@c/d", "http://a:b@c/d"),
    ("a=b", "a=b"), ("  padded  ", "padded"), ("1e3", 1000.0), ('"quoted"  ', "quoted"),
    ("[a, [b, {c: d}]]", ["a", ["b", {"c": "d"}]]), ("{a: [1, 2], b: {c: null}}", {"a": [1, 2], "b": {"c": None}}),
    ("!!str 5", "5"), ('"\\x41"', "A"), ("'it''s'", "it's"), ("a, b", "a, b"), ("--- x", "--- x"),
    ("9223372036854775807", 2**63 - 1), ("0o17", 15), ("0b101", "0b101"), ("é 日本", "é 日本"), ("a\tb", "a\tb"),
]

BAD_KEYS: list[tuple[str, str]] = [
    ("novalue", "expected KEY=VALUE"), ("=x", "expected KEY=VALUE"), ("a..b=1", "empty key segment"),
    ("a.=1", "empty key segment"), (".a=1", "empty key segment"), ("a\nb=1", "a key holds no control character"),
    ("a\tb=1", "a key holds no control character"), ("a\x1b[2J=1", "a key holds no control character"),
    ("a\u2028b=1", "a key holds no control character"), ("\x00=1", "a key holds no control character"),
]

CASES = [Case("set", f"refused-{i}", value) for i, (value, _) in enumerate(REFUSED)] + \
    [Case("set", f"accepted-{i}", value) for i, (value, _) in enumerate(ACCEPTED)] + \
    [Case("set", f"bad-key-{i}", flag) for i, (flag, _) in enumerate(BAD_KEYS)] + \
    [Case("set", "cli-newline", "name=abc\nname: evil"), Case("set", "cli-comment", "name=#x")]


@pytest.mark.parametrize(("value", "message"), REFUSED, ids=[f"refused-{i}" for i in range(len(REFUSED))])
def test_a_value_that_is_not_one_whole_flow_value_is_refused_at_the_flag(value: str, message: str) -> None:
    with pytest.raises(LoadError) as caught:
        parse_set(f"model.id={value}")
    text = str(caught.value)
    assert text.startswith("--set model.id: ") and message in text, text
    assert caught.value.location.line is None      # a flag has no line


@pytest.mark.parametrize(("value", "expected"), ACCEPTED, ids=[f"accepted-{i}" for i in range(len(ACCEPTED))])
def test_a_whole_flow_value_is_read_exactly(value: str, expected: Any) -> None:
    data = parse_set(f"a.b={value}").data
    assert data == {"a": {"b": expected}} and type(data["a"]["b"]) is type(expected)


@pytest.mark.parametrize(("flag", "message"), BAD_KEYS, ids=[f"bad-key-{i}" for i in range(len(BAD_KEYS))])
def test_a_bad_key_is_a_usage_error(flag: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_set(flag)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("flag", ["name=abc\nname: evil", "name=#x"])
def test_the_reproducers_of_issue_13_fail_at_the_flag_and_write_nothing(tmp_path: Path, flag: str) -> None:
    (tmp_path / "overlays" / "test").mkdir(parents=True)
    (tmp_path / "overlays" / "test" / "values.yaml").write_text("")
    done = run_cli(["-C", str(tmp_path), "render", "--env", "test", "--no-crd-check", "--set", flag])
    assert done.code == 1 and done.err.startswith("error: --set name: "), done.err
    assert "Traceback" not in done.err and not (tmp_path / "rendered").exists()

