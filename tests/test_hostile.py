"""Hostile values: each is refused with a located message, or renders so that Kubernetes (YAML 1.1,
y/n as booleans) reads back exactly the input string. The structure of the bundle never changes.

Inputs that could exhaust time or memory (an alias bomb, a 10 MB file, 1000-deep nesting) run in a
child process under a memory limit and a timeout: those bound a hang or a blow-up, they time nothing.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator.errors import LlmpackError
from generator.pipeline import Bundle, build
from helpers import REPO, ProjectFactory, kubernetes_read

V = "overlays/test/values.yaml"


@dataclass(frozen=True)
class Case:
    id: str
    values: str | bytes          # the values file as written
    expect: str | None = None    # the string Kubernetes must read back; None: refused
    refusal: str = ""            # a part of the refusal message
    line: int | None = None      # the line the refusal points at
    where: str = "env"           # which rendered field `expect` is read from


def env_value(raw: str) -> str:
    """A values file that sets the env var PROBE to `raw` (YAML text of a scalar)."""
    return f"model:\n  env:\n    - name: PROBE\n      value: {raw}\n"


CASES = [
    # YAML 1.1 booleans and nulls that YAML 1.2 (llmpack) reads as text: written quoted, read back as text
    *(Case(f"bool-{word}", env_value(word), word) for word in ("y", "n", "Y", "N", "yes", "No", "on", "OFF")),
    Case("quoted-true", env_value('"true"'), "true"),
    Case("quoted-tilde", env_value('"~"'), "~"),
    Case("quoted-null", env_value("'null'"), "null"),
    # numbers in disguise
    Case("octal-quoted", env_value('"0777"'), "0777"),
    Case("octal-o-quoted", env_value('"0o17"'), "0o17"),
    Case("sexagesimal", env_value("12:30"), "12:30"),
    Case("sexagesimal-3", env_value("1:20:30"), "1:20:30"),
    Case("exponent-quoted", env_value('"1e3"'), "1e3"),
    Case("inf-quoted", env_value('".inf"'), ".inf"),
    # injection: line breaks of every kind, templates, YAML syntax
    Case("newline-injection", env_value('"x\\n- name: LD_PRELOAD\\n  value: /evil.so"'),
         "x\n- name: LD_PRELOAD\n  value: /evil.so"),
    Case("line-separator", env_value('"a\\u2028b"'), "a\u2028b"),
    Case("paragraph-separator", env_value('"a\\u2029b"'), "a\u2029b"),
    Case("next-line", env_value('"a\\Nb"'), "a\x85b"),
    Case("carriage-return", env_value('"a\\rb"'), "a\rb"),
    Case("jinja-expression", env_value('"{{ 7*7 }}"'), "{{ 7*7 }}"),
    Case("jinja-statement", env_value('"{% raw %}x{% endraw %}"'), "{% raw %}x{% endraw %}"),
    Case("leading-space", env_value('"  lead"'), "  lead"),
    Case("trailing-space", env_value('"trail  "'), "trail  "),
    Case("tab", env_value('"\\tx"'), "\tx"),
    Case("comment-like", env_value('"#x"'), "#x"),
    Case("anchor-like", env_value('"&a"'), "&a"),
    Case("alias-like", env_value('"*a"'), "*a"),
    Case("dash", env_value('"- x"'), "- x"),
    Case("mapping-like", env_value('"key: value"'), "key: value"),
    Case("document-marker", env_value('"---"'), "---"),
    Case("unicode", env_value('"é 日本 🙂"'), "é 日本 🙂"),
    Case("byte-order-mark", env_value('"\\ufeffx"'), "\ufeffx"),
    Case("empty", env_value('""'), ""),
    Case("long-value", env_value('"' + "x" * 100_000 + '"'), "x" * 100_000),
    Case("literal-block", "model:\n  env:\n    - name: PROBE\n      value: |\n        line1\n        line2\n",
         "line1\nline2\n"),
    Case("name-yes", "name: \"yes\"\n", "yes", where="name"),
    Case("label-value-y", "labels: {team: \"y\"}\n", "y", where="label"),
    Case("crlf-file", b"model:\r\n  env:\r\n    - name: PROBE\r\n      value: crlf\r\n", "crlf"),
    # refused, at the line that set them
    Case("octal-unquoted", env_value("0777"), refusal="expected a string, got integer 777; quote it", line=4),
    Case("tilde-unquoted", env_value("~"), refusal="expected a string, got null", line=4),
    Case("null-unquoted", env_value("null"), refusal="expected a string, got null", line=4),
    Case("nul-escape", env_value('"a\\0b"'), refusal="control characters", line=4),
    Case("escape-sequence", env_value('"\\e[31mred"'), refusal="control characters", line=4),
    Case("nul-byte", b"name: a\x00b\n", refusal="NUL character in file", line=1),
    Case("not-utf8", b"name: caf\xe9\n", refusal="not UTF-8 text", line=1),
    Case("duplicate-key", "name: a\nname: b\n", refusal="duplicate key 'name' (first set on line 1)", line=2),
    Case("anchor", "labels: &l {a: b}\n", refusal="anchors (&l) are not allowed", line=1),
    Case("merge-key", "x: &b {a: 1}\nlabels:\n  <<: *b\n", refusal="anchors (&b) are not allowed", line=1),
    Case("python-tag", "name: !!python/object/apply:os.system [ls]\n", refusal="is not allowed in values files",
         line=1),
    Case("tab-indent", "model:\n\tid: x\n", refusal="YAML syntax error", line=2),
    Case("huge-number", "workerSpec: {size: 1e400}\n", refusal="too large a number", line=1),
    Case("very-long-name", "name: " + "a" * 1000 + "\n", refusal="must be at most 41 characters", line=1),
    Case("name-with-newline", 'name: "abc\\n"\n', refusal="must be at most 41 characters", line=1),
    Case("revision-with-newline", 'model: {revision: "main\\n"}\n', refusal="must be a commit sha or tag", line=1),
    Case("too-many-nodes", "workerSpec: {size: 1000}\nmodel: {env: []}\n", refusal="must be at most 63", line=1),
]

YAML11_WORDS = list(dict.fromkeys(w for base in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
                                  for w in (base, base.capitalize(), base.upper())))
BLOCK = "model:\n  env:\n    - name: PROBE\n      value: "
MORE = [
    # every word a YAML 1.1 reader takes for a boolean or null, quoted: text, read back as written
    *(Case(f"yaml11-word-{word}", env_value(f'"{word}"'), word) for word in YAML11_WORDS),
    # YAML 1.1 numbers that YAML 1.2 reads as text: written quoted, so Kubernetes reads text too
    Case("underscore-number", env_value("1_000"), "1_000"), Case("binary-number", env_value("0b1010"), "0b1010"),
    Case("sexagesimal-long", env_value("190:20:30"), "190:20:30"), Case("hex-quoted", env_value('"0x1F"'), "0x1F"),
    Case("plus-number-quoted", env_value('"+1"'), "+1"), Case("dot-number-quoted", env_value('".5"'), ".5"),
    # document framing that is fine
    Case("yaml-1.2-directive", "%YAML 1.2\n---\n" + env_value("x"), "x"),
    Case("document-start", "---\n" + env_value("x"), "x"), Case("document-end", env_value("x") + "...\n", "x"),
    Case("bom-file", "\ufeff" + env_value("bom"), "bom"),
    Case("cr-only-file", env_value("cr").replace("\n", "\r"), "cr"),
    Case("folded-block", BLOCK + ">\n        a\n        b\n", "a b\n"),
    Case("literal-strip", BLOCK + "|-\n        a\n        b\n", "a\nb"),
    Case("literal-keep", BLOCK + "|+\n        a\n\n", "a\n\n"),
    Case("literal-indented", BLOCK + "|2\n          a\n        b\n", "  a\nb\n"),
    Case("literal-script", BLOCK + "|\n        #!/bin/sh\n        echo \"$X\" # y\n", '#!/bin/sh\necho "$X" # y\n'),
    # text that is hard to write back
    Case("single-quoted", env_value("'it''s'"), "it's"),
    Case("escapes", env_value('"\\x41\\u00e9\\U0001F642"'), "Aé🙂"),
    Case("right-to-left-override", env_value('"a\\u202eb"'), "a\u202eb"),
    Case("zero-width-space", env_value('"a\\u200bb"'), "a\u200bb"),
    Case("bidi-isolates", env_value('"\\u2066x\\u2069"'), "\u2066x\u2069"),
    Case("noncharacter", env_value('"\\uffff"'), "\uffff"),
    Case("long-unicode", env_value('"' + "é" * 50_000 + '"'), "é" * 50_000),
    Case("backslashes", env_value("'a\\b\\\\c'"), "a\\b\\\\c"), Case("quote-marks", env_value("'\"x\"'"), '"x"'),
    Case("percent", env_value("'%x'"), "%x"), Case("at-sign", env_value("'@x'"), "@x"),
    Case("backtick", env_value("'`x`'"), "`x`"),
    Case("braces", env_value("'{a: b}'"), "{a: b}"), Case("brackets", env_value("'[a]'"), "[a]"),
    Case("question-mark", env_value("'? x'"), "? x"), Case("pipe", env_value("'| x'"), "| x"),
    Case("gt", env_value("'> x'"), "> x"),
    Case("exclamation", env_value("'!x'"), "!x"), Case("shell", env_value("'$(rm -rf /)'"), "$(rm -rf /)"),
    Case("colon-space-end", env_value("'x: '"), "x: "), Case("dots", env_value("..."), "..."),
    # refused by the loader, at the line that holds them
    Case("yaml-1.1-directive", "%YAML 1.1\n---\nname: x\n", refusal="%YAML 1.1: values files are read by YAML 1.2 "
         "rules", line=1),
    Case("tag-directive", "%TAG ! tag:yaml.org,2002:\n---\nname: x\n", refusal="%TAG directives are not allowed",
         line=1),
    Case("yaml-2.0-directive", "%YAML 2.0\n---\nname: x\n", refusal="incompatible YAML document", line=1),
    Case("two-documents", "name: a\n---\nname: b\n", refusal="found a second '---'", line=2),
    Case("5000-digit-integer", "workerSpec: {size: " + "1" * 5000 + "}\n",
         refusal="11111111111111111111... (5000 characters) is too large an integer", line=1),
    Case("integer-2-63", "workerSpec: {size: 9223372036854775808}\n", refusal="is too large an integer", line=1),
    Case("huge-hex", "workerSpec: {size: 0x" + "f" * 64 + "}\n", refusal="(66 characters) is too large an integer",
         line=1),
    Case("huge-negative", "workerSpec: {size: -99999999999999999999}\n", refusal="is too large an integer", line=1),
    Case("float-1e309", "workerSpec: {size: 1e309}\n", refusal="1e309 is too large a number", line=1),
    Case("5000-digit-float", "workerSpec: {size: " + "1" * 5000 + ".5}\n",
         refusal="(5002 characters) is too large a number", line=1),
    Case("nan", "workerSpec: {size: .nan}\n", refusal="is not a usable number", line=1),
    Case("integer-key", "labels: {1: x}\n", refusal="keys must be strings; got 1", line=1),
    Case("boolean-key", "labels: {true: x}\n", refusal="keys must be strings; got True", line=1),
    Case("null-key", "labels: {~: x}\n", refusal="keys must be strings; got None", line=1),
    Case("float-key", "labels: {1.5: x}\n", refusal="keys must be strings; got 1.5", line=1),
    Case("complex-key", "labels: {[a]: b}\n", refusal="keys must be strings; got a mapping or list", line=1),
    Case("explicit-complex-key", "? [a]\n: b\n", refusal="keys must be strings", line=1),
    Case("set-tag", "labels: !!set {a, b}\n", refusal="tag 'tag:yaml.org,2002:set' is not allowed", line=1),
    Case("omap-tag", "labels: !!omap [{a: b}]\n", refusal="tag 'tag:yaml.org,2002:omap' is not allowed", line=1),
    Case("binary-tag", "labels: {a: !!binary aGVsbG8=}\n", refusal="tag 'tag:yaml.org,2002:binary'", line=1),
    Case("timestamp-tag", "labels: {a: !!timestamp 2001-12-14}\n", refusal="tag 'tag:yaml.org,2002:timestamp'",
         line=1),
    Case("int-tag-on-text", "labels: {a: !!int x}\n", refusal="does not match its tag", line=1),
    Case("local-tag", "labels: !local {a: b}\n", refusal="tag '!local' is not allowed", line=1),
    Case("verbatim-tag", "labels: !<tag:example.com,2000:x> {a: b}\n", refusal="is not allowed in values files",
         line=1),
    Case("alias-of-scalar", "a: &x y\nb: *x\n", refusal="anchors (&x) are not allowed", line=1),
    Case("bare-alias", "labels: {a: *nowhere}\n", refusal="aliases (*nowhere) are not allowed", line=1),
    Case("duplicate-nested", "labels:\n  a: 1\n  a: 2\n", refusal="duplicate key 'a' (first set on line 2)", line=3),
    Case("duplicate-flow", "labels: {a: 1, a: 2}\n", refusal="duplicate key 'a'", line=1),
    Case("duplicate-in-list-item", "model:\n  env:\n    - name: A\n      name: B\n", refusal="duplicate key 'name'",
         line=4),
    Case("nul-in-quoted", b"labels: {a: \"x\x00\"}\n", refusal="NUL character in file", line=1),
    Case("nul-on-line-3", b"a: 1\nb: 2\nc: \x00\n", refusal="NUL character in file", line=3),
    Case("overlong-utf8", b"name: \xc0\xaf\n", refusal="not UTF-8 text (byte 0xc0 at offset 6)", line=1),
    Case("utf8-surrogate", b"name: \xed\xa0\x80\n", refusal="not UTF-8 text (byte 0xed", line=1),
    Case("lone-continuation-byte", b"name: \x80\n", refusal="not UTF-8 text (byte 0x80", line=1),
    Case("latin1-key", b"labels: {caf\xe9: x}\n", refusal="not UTF-8 text (byte 0xe9", line=1),
    Case("utf16-file", "name: x\n".encode("utf-16"), refusal="not UTF-8 text", line=1),
    Case("c0-control-raw", b"name: a\x1bb\n", refusal="unacceptable character #x001b", line=1),
    Case("top-level-list", "- a\n", refusal="the top level of a values file must be a mapping", line=1),
    Case("top-level-scalar", "just text\n", refusal="the top level of a values file must be a mapping", line=1),
    Case("unclosed-flow", "labels: {a: b\n", refusal="YAML syntax error", line=2),
    Case("unclosed-quote", 'name: "abc\n', refusal="YAML syntax error", line=2),
    Case("bad-indent", "model:\n  id: x\n id2: y\n", refusal="YAML syntax error", line=3),
    Case("deep-33", "labels: " + "[" * 33 + "]" * 33 + "\n", refusal="nesting deeper than 32 levels", line=1),
]
CASES += MORE


def test_the_catalogue_covers_every_family_with_at_least_300_cases() -> None:
    """Issue #13: every reproducer is kept, one table-driven file per family of bad input."""
    import test_hostile_files
    import test_hostile_writes
    import test_secrets
    import test_set_grammar

    families = {"values": [c.id for c in CASES], **{
        module.__name__: [c.id for c in module.CASES]
        for module in (test_hostile_files, test_hostile_writes, test_secrets, test_set_grammar)}}
    for family, ids in families.items():
        assert len(ids) == len(set(ids)), f"{family}: duplicate case ids"
        assert len(ids) >= 15, family
    assert sum(len(ids) for ids in families.values()) >= 300


def render(make_project: ProjectFactory, values: str | bytes) -> Bundle:
    project = make_project("")
    path = project.root / "overlays" / "test" / "values.yaml"
    if isinstance(values, bytes):
        path.write_bytes(values)
    else:
        path.write_text(values, encoding="utf-8")
    return build(project, "test")


def shape(bundle: Bundle) -> set[tuple[Any, ...]]:
    """The key structure of every object (paths, no values), to prove no value adds or moves a field."""
    def paths(node: Any, prefix: tuple[Any, ...]) -> set[tuple[Any, ...]]:
        found = {prefix}
        if isinstance(node, dict):
            for key, value in node.items():
                found |= paths(value, (*prefix, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                found |= paths(value, (*prefix, index))
        return found

    return {p for f in bundle.files if f.obj for p in paths(f.obj, (f.path,))}


def read_back(bundle: Bundle, where: str) -> Any:
    texts = {f.path.rsplit("/", 1)[-1]: f.text for f in bundle.files}
    isvc = kubernetes_read(texts["inferenceservice.yaml"])
    if where == "name":
        return isvc["metadata"]["name"]
    if where == "label":
        return isvc["metadata"]["labels"]["team"]
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["model"]["env"]}
    return env["PROBE"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_value(make_project: ProjectFactory, case: Case) -> None:
    if case.expect is None:
        with pytest.raises(LlmpackError) as caught:
            render(make_project, case.values)
        text = str(caught.value)
        assert case.refusal in text, text
        assert f"{V}:{case.line}" in text, text
        assert "Traceback" not in text
        return
    bundle = render(make_project, case.values)
    assert read_back(bundle, case.where) == case.expect
    if case.where == "env":
        baseline = render(make_project, env_value("plain"))
        assert shape(bundle) == shape(baseline), "a value changed the structure of the bundle"


BOMBS = {
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12)),
    "ten-megabytes": "labels: {a: \"" + "x" * (10 * 1024 * 1024) + "\"}\n",
    "deep-nesting": "labels: " + "[" * 1000 + "]" * 1000 + "\n",
    "deep-mappings": "".join("  " * i + f"k{i}:\n" for i in range(1000)),
}
BOMB_MESSAGES = {"alias-bomb": "anchors (&a) are not allowed", "ten-megabytes": "values files are limited to 1 MiB",
                 "deep-nesting": "nesting deeper than 32 levels", "deep-mappings": "nesting deeper than 32 levels"}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_inputs_built_to_exhaust_are_refused_within_bounds(name: str, tmp_path: Path) -> None:
    folder = tmp_path / "overlays" / "test"
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(BOMBS[name])
    done = subprocess.run([sys.executable, "-m", "generator", "-C", str(tmp_path), "render", "--env", "test",
                           "--no-crd-check"], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_memory, env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: {V}:")
    assert BOMB_MESSAGES[name] in done.stderr and "Traceback" not in done.stderr


def test_a_value_never_enters_the_template_text(make_project: ProjectFactory) -> None:
    """`q` splices values after parsing: a value that is YAML, or a placeholder, stays a string."""
    for raw in ('"__llmpack_q0__"', '"x: {a: [1, 2]}"', '"]}\\n---\\nkind: Secret"'):
        bundle = render(make_project, env_value(raw))
        assert read_back(bundle, "env") == kubernetes_read(f"v: {raw}")["v"]
        assert shape(bundle) == shape(render(make_project, env_value("plain")))
