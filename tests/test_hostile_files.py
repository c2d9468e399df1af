"""What llmpack reads, made hostile: every case is a located error (or, where the input is fine, a
bundle), never a traceback or a hang (issue #13: -f /dev/zero, a FIFO, /proc/self/mem, a link loop,
releases/a.yaml a folder, a plain file named releases, ...). Each runs the real CLI in a child process,
bounded in time: a hang fails the case instead of blocking the suite.

Root reads any file whatever its mode, so "permission denied" is made real by running the child
without the two capabilities that let root do so (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): a file of
mode 000 is then unreadable to it too.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from catalogue import Case, assert_clean_error, can_drop_root_reads, run_process

ENV = "overlays/test"
Setup = Callable[[Path], list[str]]      # prepares the project in the folder; returns extra arguments


@dataclass(frozen=True)
class Read:
    id: str
    setup: Setup
    where: str           # the message starts with "error: " and names this place
    part: str            # and says this
    code: int = 1


def extra_file(make: Callable[[Path], None], name: str = "extra.yaml") -> Setup:
    def setup(root: Path) -> list[str]:
        make(root / name)
        return ["-f", str(root / name)]
    return setup


def given(path: str) -> Setup:
    return lambda root: ["-f", path]


def at(relative: str, make: Callable[[Path], None]) -> Setup:
    def setup(root: Path) -> list[str]:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and not target.is_symlink():
            target.unlink()
        make(target)
        return []
    return setup


def fifo(path: Path) -> None:
    os.mkfifo(path)


def folder(path: Path) -> None:
    path.mkdir()


def link_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


def loop(path: Path) -> None:
    path.symlink_to(path.name)


def two_link_loop(path: Path) -> None:
    path.symlink_to(path.name + ".other")
    path.with_name(path.name + ".other").symlink_to(path.name)


def text(content: str | bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return make


def device(kind: int, major: int, minor: int) -> Callable[[Path], None]:
    return lambda path: os.mknod(path, kind | 0o600, os.makedev(major, minor))


def sock(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


def sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as out:
            out.write(b"a: 1\n")
            out.truncate(size)
    return make


def architecture(make: Callable[[Path], None]) -> Setup:
    def setup(root: Path) -> list[str]:
        make(root / "arch.json")          # a path set by --set is relative to the project
        return ["--set", "model.architecture=./arch.json"]
    return setup


def values(content: str) -> Setup:
    return at(f"{ENV}/values.yaml", text(content))


NOT_REGULAR = "not a regular file; a values file must be a regular file"
MISSING = "cannot read the values file: it does not exist (ENOENT)"
V = f"{ENV}/values.yaml"
R = f"{ENV}/releases"

READS = [
    # -f FILE that is no regular file: refused before it is opened, or read with a cap
    Read("f-fifo", extra_file(fifo), "extra.yaml: ", f"is a FIFO, {NOT_REGULAR}"),
    Read("f-dev-zero", given("/dev/zero"), "/dev/zero: ", f"is a character device, {NOT_REGULAR}"),
    Read("f-dev-null", given("/dev/null"), "/dev/null: ", "is a character device"),
    Read("f-dev-urandom", given("/dev/urandom"), "/dev/urandom: ", "is a character device"),
    Read("f-proc-self-mem", given("/proc/self/mem"), "/proc/self/mem: ",
         "cannot read the values file: input/output error (EIO)"),
    Read("f-proc-self-environ", given("/proc/self/environ"), "/proc/self/environ:1: ", "NUL character"),
    Read("f-proc-self-fd-dir", given("/proc/self/fd"), "/proc/self/fd: ", "is a folder, not a regular file"),
    Read("f-tmp", given("/tmp"), "/tmp: ", "is a folder, not a regular file"),
    Read("f-root", given("/"), "/: ", "is a folder"),
    Read("f-folder", extra_file(folder, "dir.yaml"), "dir.yaml: ", "is a folder"),
    Read("f-link-loop", extra_file(loop), "extra.yaml: ",
         "cannot read the values file: it is a symbolic link loop (ELOOP)"),
    Read("f-two-link-loop", extra_file(two_link_loop), "extra.yaml: ", "symbolic link loop (ELOOP)"),
    Read("f-dangling-link", extra_file(link_to("nowhere.yaml")), "/", MISSING),
    Read("f-missing", given("/nonexistent/values.yaml"), "/nonexistent/values.yaml: ", MISSING),
    Read("f-through-a-file", lambda root: ["-f", str(root / V / "x.yaml")], f"{V}/x.yaml: ",
         "a part of its path is not a folder (ENOTDIR)"),
    Read("f-socket", extra_file(sock), "extra.yaml: ", "is a socket, not a regular file"),
    Read("f-char-device", extra_file(device(stat.S_IFCHR, 1, 5)), "/", "is a character device"),
    Read("f-block-device", extra_file(device(stat.S_IFBLK, 7, 0)), "/", "is a block device"),
    Read("f-link-to-dev-zero", extra_file(link_to("/dev/zero")), "/", "is a character device"),
    Read("f-ten-mib", extra_file(text(b"a: " + b"x" * (10 * 1024 * 1024))), "/",
         "file is 10.0 MiB; values files are limited to 1 MiB"),
    Read("f-one-byte-over", extra_file(text(b"#" * (1024 * 1024 + 1))), "/", "values files are limited to 1 MiB"),
    Read("f-sparse-2-gib", extra_file(sparse(2 * 1024**3)), "/", "file is 2048.0 MiB"),
    Read("f-name-with-newline", extra_file(text(""), "a\nkind: Secret.yaml"), "-f ",
         "the file name holds a control character or line break", 2),
    Read("f-not-utf8", extra_file(text(b"name: caf\xe9\n")), "extra.yaml:1: ",
         "not UTF-8 text (byte 0xe9 at offset 9)"),
    Read("f-utf16", extra_file(text("name: x\n".encode("utf-16"))), "extra.yaml:1: ", "not UTF-8 text"),
    Read("f-5000-digits", extra_file(text("workerSpec: {size: " + "1" * 5000 + "}\n")), "extra.yaml:1: ",
         "(5000 characters) is too large an integer"),
    # the overlay layout
    Read("values-folder", at(V, folder), f"{V}: ", f"is a folder, {NOT_REGULAR}"),
    Read("values-fifo", at(V, fifo), f"{V}: ", f"is a FIFO, {NOT_REGULAR}"),
    Read("values-dev-zero", at(V, link_to("/dev/zero")), f"{V}: ", "is a character device"),
    Read("values-char-device", at(V, device(stat.S_IFCHR, 1, 3)), f"{V}: ", "is a character device"),
    Read("values-link-loop", at(V, loop), f"{V}: ", "symbolic link loop (ELOOP)"),
    Read("values-dangling-link", at(V, link_to("gone.yaml")), f"{V}: ", MISSING),
    Read("values-socket", at(V, sock), f"{V}: ", "is a socket"),
    Read("releases-file", at(R, text("x")), f"{R}: ", "is a file, not a folder; releases/ holds one RELEASE.yaml"),
    Read("releases-fifo", at(R, fifo), f"{R}: ", "is a FIFO, not a folder"),
    Read("releases-link-loop", at(R, loop), f"{R}: ", "is a link loop, not a folder"),
    Read("release-folder", at(f"{R}/a.yaml", folder), f"{R}/a.yaml: ", f"is a folder, {NOT_REGULAR}"),
    Read("release-fifo", at(f"{R}/a.yaml", fifo), f"{R}/a.yaml: ", "is a FIFO"),
    Read("release-dev-zero", at(f"{R}/a.yaml", link_to("/dev/zero")), f"{R}/a.yaml: ", "is a character device"),
    Read("release-link-loop", at(f"{R}/a.yaml", loop), f"{R}/a.yaml: ", "symbolic link loop"),
    Read("release-proc-mem", at(f"{R}/a.yaml", link_to("/proc/self/mem")), f"{R}/a.yaml: ", "(EIO)"),
    Read("release-bad-name", at(f"{R}/Bad_Name.yaml", text("")), f"{R}/Bad_Name.yaml: ", "release files are named"),
    Read("chart-values-fifo", at("charts/kserve-multinode/values.yaml", fifo),
         "charts/kserve-multinode/values.yaml: ", "is a FIFO"),
    # a model config named by the values
    Read("architecture-fifo", architecture(fifo), "invalid values", "model config "),
    Read("architecture-dev-zero", architecture(link_to("/dev/zero")), "invalid values", "is a character device"),
    Read("architecture-folder", architecture(folder), "invalid values", "is a folder"),
    Read("architecture-link-loop", architecture(loop), "invalid values", "symbolic link loop"),
    Read("architecture-two-mib", architecture(text(b" " * (2 * 1024 * 1024))), "invalid values",
         "config.jsons are limited to 1 MiB"),
    Read("architecture-proc-mem", architecture(link_to("/proc/self/mem")), "invalid values", "(EIO)"),
]

ENVS = [("dot", ".", "an environment is a folder under overlays/"), ("dot-dot", "..", "an environment is a folder"),
        ("hidden", ".git", "an environment is a folder"), ("path", "test/../test", "an environment is a folder"),
        ("absolute", "/etc", "an environment is a folder"), ("empty", "", "an environment is a folder"),
        ("newline", "a\nb", "an environment is a folder"), ("missing", "nope", "unknown environment 'nope'"),
        ("a-file", "afile", "unknown environment 'afile'")]

CASES = [Case("files", r.id) for r in READS] + [Case("files", f"env-{name}") for name, _, _ in ENVS] + \
    [Case("files", f"unreadable-{name}") for name in ("values", "releases", "f-file")] + \
    [Case("files", name) for name in ("project-link-loop", "project-a-file")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ENV).mkdir(parents=True)
    (tmp_path / V).write_text("")
    return tmp_path


@pytest.mark.parametrize("case", READS, ids=[r.id for r in READS])
def test_a_hostile_read_is_a_located_error(project: Path, case: Read) -> None:
    extra = case.setup(project)
    done = run_process(["-C", str(project), "render", "--env", "test", "--no-crd-check", *extra])
    where = case.where if case.where != "/" else "extra.yaml: "
    assert_clean_error(done, where, case.part, code=case.code)
    assert not (project / "rendered").exists()


@pytest.mark.parametrize(("name", "env", "message"), ENVS, ids=[e[0] for e in ENVS])
def test_an_environment_is_a_plain_folder_name(project: Path, name: str, env: str, message: str) -> None:
    (project / "overlays" / "values.yaml").write_text("")      # what `--env .` used to render
    (project / "overlays" / "afile").write_text("")
    (project / "overlays" / "a\nb").mkdir()
    done = run_process(["-C", str(project), "render", "--env", env, "--no-crd-check"])
    assert_clean_error(done, "", message, code=2)
    assert not (project / "rendered").exists() and (project / "overlays" / "test" / "values.yaml").exists()


@pytest.mark.parametrize("name", ["project-link-loop", "project-a-file"])
def test_a_project_folder_that_is_no_folder(tmp_path: Path, name: str) -> None:
    target = tmp_path / "p"
    if name == "project-link-loop":
        target.symlink_to("p")
    else:
        target.write_text("")
    done = run_process(["-C", str(target), "render", "--env", "test"])
    assert_clean_error(done, f"-C {target}: ", "no such folder", code=2)


@pytest.mark.skipif(not can_drop_root_reads(), reason="needs Linux and root (to drop root's read capabilities)")
@pytest.mark.parametrize("name", ["values", "releases", "f-file"])
def test_a_file_that_may_not_be_read_is_a_located_error(project: Path, name: str) -> None:
    extra: list[str] = []
    if name == "values":
        (project / V).chmod(0)
        where, part = f"{V}: ", "cannot read the values file: permission denied (EACCES)"
    elif name == "releases":
        (project / R).mkdir(mode=0)
        where, part = f"{R}: ", "cannot list the folder: permission denied (EACCES)"
    else:
        secret = project / "private.yaml"
        secret.write_text("")
        secret.chmod(0)
        extra, where, part = ["-f", str(secret)], "private.yaml: ", "permission denied (EACCES)"
    done = run_process(["-C", str(project), "render", "--env", "test", "--no-crd-check", *extra],
                       without_root_reads=True)
    assert_clean_error(done, where, part)
