"""A Hugging Face token or a password never reaches the output, the logs or an error message."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
from catalogue import Case, Done, run_cli

from generator.load import parse_set
from generator.secrets import secret_problems
from generator.tokens import holds_token, redact
from helpers import REPO, crd_dir

TOKEN = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"
PASSWORD = "correct-horse-battery-staple"
LEAKS = re.compile(re.escape(TOKEN) + "|" + re.escape(PASSWORD) + r"|hf_[A-Za-z]{34}")

PLACES = [
    ("env-value", f"model:\n  env:\n    - {{name: EXTRA, value: {TOKEN}}}\n"),
    ("env-named-token", f"model:\n  env:\n    - {{name: HF_TOKEN, value: {PASSWORD}}}\n"),
    ("token-secret-literal", f"download: {{tokenSecret: {TOKEN}}}\n"),
    ("label", f"labels: {{team: {TOKEN}}}\n"),
    ("password-key", f"labels: {{password: {PASSWORD}}}\n"),
    ("model-id", f"model: {{id: {TOKEN}}}\n"),
    ("arg", f"model: {{args: [--api-key={TOKEN}]}}\n"),
    ("key", f"labels: {{{TOKEN}: x}}\n"),
]


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "LLMPACK_CRD_DIR": str(crd_dir())}
    return subprocess.run([sys.executable, "-m", "generator", "-C", str(root), *args], capture_output=True,
                          text=True, env=env)


@pytest.mark.parametrize("values", [p[1] for p in PLACES], ids=[p[0] for p in PLACES])
def test_secrets_in_values_are_refused_without_being_echoed(tmp_path: Path, values: str) -> None:
    folder = tmp_path / "overlays" / "test"
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(values)
    for command in (["render", "--env", "test"], ["validate", "--env", "test"], ["explain", "--env", "test"],
                    ["plan", "--env", "test"]):
        done = run(tmp_path, *command)
        assert not LEAKS.search(done.stdout + done.stderr), (command, done.stdout + done.stderr)
        if command[0] != "explain":
            assert done.returncode == 1 and "overlays/test/values.yaml:" in done.stderr, done.stderr
    assert not (tmp_path / "rendered").exists()


def test_secret_on_the_command_line_is_refused_without_being_echoed(tmp_path: Path) -> None:
    (tmp_path / "overlays" / "test").mkdir(parents=True)
    (tmp_path / "overlays" / "test" / "values.yaml").write_text("")
    done = run(tmp_path, "render", "--env", "test", "--set", f"model.id={TOKEN}")
    assert done.returncode == 1 and "--set model.id at /model/id" in done.stderr
    assert not LEAKS.search(done.stdout + done.stderr)


def test_no_bundle_holds_a_token_or_a_secret_object() -> None:
    for folder in (REPO / "rendered", REPO / "tests" / "golden"):
        for path in folder.rglob("*"):
            if path.is_file():
                text = path.read_text()
                assert not LEAKS.search(text), path
                assert "kind: \"Secret\"" not in text, path


# The catalogue's secrets family (issue #13): a token in every place a message can quote (keys,
# names, tags, anchors, layer and file names, argparse, exception text), encoded, and in pieces.
# Each is refused or ignored without printing the token in any form; the values cases also name
# the file. Run in this process (fast): `catalogue.run_cli` is the real `llmpack` main.

B64 = base64.b64encode(TOKEN.encode()).decode()
ENCODINGS = {
    "base64": B64, "base64-unpadded": B64.rstrip("="),
    "base64-url": base64.urlsafe_b64encode(b"\xfb\xff" + TOKEN.encode()).decode(),
    "base64-offset-1": base64.b64encode(b"x" + TOKEN.encode()).decode(),
    "base64-offset-2": base64.b64encode(b"xy" + TOKEN.encode() + b"z").decode(),
    "base64-basic-auth": base64.b64encode(b"user:" + TOKEN.encode()).decode(),
    "base64-twice": base64.b64encode(B64.encode()).decode(),
    "url-encoded": urllib.parse.quote(TOKEN.replace("_", "%5F"), safe="%"),
    "url-every-byte": "".join(f"%{b:02X}" for b in TOKEN.encode()),
    "url-lowercase": "".join(f"%{b:02x}" for b in TOKEN.encode()),
    "url-of-base64": urllib.parse.quote(B64, safe=""),
    "base64-of-url": base64.b64encode(TOKEN.replace("_", "%5F").encode()).decode(),
    "hex": TOKEN.encode().hex(), "hex-upper": TOKEN.encode().hex().upper(),
}
HALVES = (TOKEN[:17], TOKEN[17:])


@dataclass(frozen=True)
class Leak:
    id: str
    values: str | None               # overlays/test/values.yaml; None: leave it empty
    argv: tuple[str, ...] = ()       # after `render --env test --no-crd-check`
    needle: str = TOKEN              # what must not be printed (besides any raw token)
    located: bool = True             # the refusal names overlays/test/values.yaml


def in_values(name: str, text: str, needle: str = TOKEN) -> Leak:
    return Leak(name, text, needle=needle)


LEAKS_ = [
    in_values("key-int", f"labels: {{{TOKEN}: 1}}\n"), in_values("top-key", f"{TOKEN}: 1\n"),
    in_values("key-map", f"{TOKEN}:\n  a: b\n"), in_values("key-list", f"{TOKEN}: [a]\n"),
    in_values("key-null", f"{TOKEN}:\n"), in_values("key-bool", f"gpu: {{{TOKEN}: true}}\n"),
    in_values("key-deep", f"model:\n  env:\n    - {{name: A, {TOKEN}: x}}\n"),
    in_values("duplicate-key", f"a: 1\n{TOKEN}: 1\n{TOKEN}: 2\n"), in_values("tag", f"labels: !{TOKEN} x\n"),
    in_values("tag-secondary", f"labels: !!{TOKEN} x\n"), in_values("anchor", f"labels: &{TOKEN} x\n"),
    in_values("alias", f"labels: *{TOKEN}\n"), in_values("syntax-error-after", f"labels: [{TOKEN}\n"),
    in_values("name", f"name: {TOKEN}\n"), in_values("namespace", f"namespace: {TOKEN}\n"),
    in_values("env-name", f"model:\n  env:\n    - {{name: {TOKEN}, value: x}}\n"),
    in_values("size", f"workerSpec: {{size: {TOKEN}}}\n"), in_values("nested-list", f"model: {{args: [[{TOKEN}]]}}\n"),
    in_values("inside-long-text", f"labels: {{team: \"{'x' * 200}{TOKEN}{'y' * 200}\"}}\n"),
    in_values("escaped-in-yaml", 'labels: {team: "hf\\x5f' + TOKEN[3:] + '"}\n'),
    in_values("version", f"kserve: {{version: {TOKEN}}}\n"), in_values("storage-uri", f"model: {{storageUri: "
                                                                                    f"\"pvc://{TOKEN}/x\"}}\n"),
    *(in_values(f"{name}-label", f"labels: {{team: \"{text}\"}}\n", text) for name, text in ENCODINGS.items()),
    *(in_values(f"{name}-arg", f"model: {{args: [\"--token={text}\"]}}\n", text) for name, text in ENCODINGS.items()),
    in_values("split-list", f"model: {{args: [{HALVES[0]}, {HALVES[1]}]}}\n", HALVES[1]),
    in_values("split-map", f"labels: {{a: {HALVES[0]}, b: {HALVES[1]}}}\n", HALVES[1]),
    in_values("split-three", f"model: {{args: [{TOKEN[:10]}, {TOKEN[10:20]}, {TOKEN[20:]}]}}\n", TOKEN[20:]),
    Leak("set-value", None, ("--set", f"labels.team={TOKEN}"), located=False),
    Leak("set-base64", None, ("--set", f"labels.team={B64}"), B64, located=False),
    Leak("set-key", None, ("--set", f"labels.{TOKEN}=1"), located=False),
    Leak("set-top-key", None, ("--set", f"{TOKEN}=1"), located=False),
    Leak("set-key-no-value", None, ("--set", TOKEN), located=False),
    Leak("set-bad-value", None, ("--set", f"{TOKEN}=[unclosed"), located=False),
    Leak("set-same-key-twice", None, ("--set", f"labels.team={HALVES[0]}", "--set", f"labels.team={HALVES[1]}"),
         HALVES[1], located=False),
    Leak("set-two-keys", None, ("--set", f"labels.a={HALVES[0]}", "--set", f"labels.b={HALVES[1]}"), HALVES[1],
         located=False),
    Leak("set-flow-list", None, ("--set", f"model.args=[{HALVES[0]}, {HALVES[1]}]"), HALVES[1], located=False),
    Leak("set-base64-halves", None, ("--set", f"labels.a={B64[:24]}", "--set", f"labels.a={B64[24:]}"), B64[24:],
         located=False),
    Leak("set-same-key-apart", None, ("--set", f"labels.a={HALVES[0]}", "--set", "workerSpec.size=1", "--set",
                                      f"labels.a={HALVES[1]}"), HALVES[1], located=False),
    Leak("argparse-extra", None, (TOKEN,), located=False),
    Leak("argparse-bad-option", None, (f"--{TOKEN}",), located=False),
    Leak("env-folder-name", None, ("--env", TOKEN), located=False),
    Leak("release-name", None, ("--release", TOKEN), located=False),
]


def _argv(root: Path, leak: Leak) -> list[str]:
    base = ["-C", str(root), "render", "--env", "test", "--no-crd-check"]
    if leak.id == "env-folder-name":
        base = ["-C", str(root), "render", "--no-crd-check"]
    if leak.id == "release-name":
        base = ["-C", str(root), "explain", "--env", "test"]
    return [*base, *leak.argv]


@pytest.mark.parametrize("leak", LEAKS_, ids=[leak.id for leak in LEAKS_])
def test_a_token_anywhere_is_refused_and_never_printed(tmp_path: Path, leak: Leak) -> None:
    folder = tmp_path / "overlays" / "test"
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(leak.values or "")
    (tmp_path / "overlays" / TOKEN).mkdir()
    done = run_cli(_argv(tmp_path, leak))
    assert done.code in (1, 2) and "Traceback" not in done.err, done.err
    assert leak.needle not in done.text and not LEAKS.search(done.text) and not holds_token(done.text), done.text
    if leak.located:
        assert "overlays/test/values.yaml:" in done.err, done.err
    assert not (tmp_path / "rendered").exists()


NAMED = ["f-file", "f-folder", "release-file", "project-folder", "cache-dir-progress", "exception-text"]


@pytest.mark.parametrize("where", NAMED)
def test_a_token_in_a_name_or_an_exception_is_never_printed(tmp_path: Path, where: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / (TOKEN if where == "project-folder" else "p")
    (root / "overlays" / "test").mkdir(parents=True)
    (root / "overlays" / "test" / "values.yaml").write_text("name: x\n" if where != "project-folder" else "a: [\n")
    argv = ["-C", str(root), "render", "--env", "test", "--no-crd-check"]
    if where in ("f-file", "f-folder"):
        extra = tmp_path / (f"{TOKEN}.yaml" if where == "f-file" else f"{TOKEN}/x.yaml")
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_text("")
        argv += ["-f", str(extra)]
    elif where == "release-file":
        (root / "overlays" / "test" / "releases").mkdir()
        (root / "overlays" / "test" / "releases" / f"{TOKEN}.yaml").write_text("")
    elif where == "exception-text":
        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError(f"a bug that quotes {TOKEN} and {B64}")
        monkeypatch.setattr("generator.pipeline.render", broken)
    if where == "cache-dir-progress":
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            from generator.commands import say
            say(f"fetching into {tmp_path / TOKEN} from https://user:{TOKEN}@proxy.example/")
        done = Done(0, out.getvalue(), err.getvalue())
    else:
        done = run_cli(argv)
        assert done.code in (1, 2), done.err
    assert not LEAKS.search(done.text) and not holds_token(done.text) and B64 not in done.text, done.text
    if where == "exception-text":
        assert "Traceback" in done.err and "RuntimeError: a bug that quotes hf_*** and hf_***" in done.err
    assert not (root / "rendered").exists()


def test_a_token_in_a_file_name_never_reaches_the_bundle(tmp_path: Path) -> None:
    """Layer names are written into every release header: a token there is refused, not redacted."""
    (tmp_path / "overlays" / "test").mkdir(parents=True)
    (tmp_path / "overlays" / "test" / "values.yaml").write_text("")
    extra = tmp_path / f"{TOKEN}.yaml"
    extra.write_text("")
    done = run_cli(["-C", str(tmp_path), "render", "--env", "test", "--no-crd-check", "-f", str(extra)])
    assert done.code == 1 and "the name of this file or flag holds a Hugging Face token" in done.err, done.err
    assert not (tmp_path / "rendered").exists()


def test_redact_hides_every_form_and_keeps_the_rest() -> None:
    for name, text in ENCODINGS.items():
        assert redact(f"see {text} here") == "see hf_*** here", name
        assert holds_token(text), name
    assert redact(f"a {TOKEN}1234 b") == "a hf_*** b"
    for harmless in ("hf_short", "x" * 10_000, "QUJD" * 40, "a%20b", "0123456789abcdef" * 8, B64[:40]):
        assert redact(harmless) == harmless and not holds_token(harmless)


def test_a_split_is_refused_only_when_the_joined_pieces_are_a_token() -> None:
    sets = [parse_set(f"labels.a={HALVES[0]}"), parse_set("labels.b=x-1"), parse_set(f"labels.c={HALVES[1]}")]
    assert secret_problems(sets) == []        # apart, on other keys, with other text between: not one string
    assert len(secret_problems(sets[::2])) == 1   # side by side on the command line: one string in two flags
    assert secret_problems([parse_set("model.args=[--max-model-len=8192, --enforce-eager]")]) == []


CASES = [Case("secrets", p[0]) for p in PLACES] + [Case("secrets", leak.id) for leak in LEAKS_] + \
    [Case("secrets", name) for name in NAMED] + [Case("secrets", "command-line"), Case("secrets", "bundle-scan")]
