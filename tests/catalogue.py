"""The hostile-input catalogue's shared parts: a case's name, and the CLI run as a user runs it.

Each family of bad input has its own table-driven test file (test_hostile.py: values; test_hostile_files.py:
what is read; test_hostile_writes.py: what is written; test_secrets.py: tokens; test_set_grammar.py:
--set); each exports `CASES`, and test_hostile.py counts them. Every case ends in a bundle or a located
`error: ...` line: never a traceback, never a hang (subprocess runs are bounded), never a token.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator import cli

REPO = Path(__file__).resolve().parent.parent
TOKEN = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"
LEAK = re.compile(r"hf_[A-Za-z]{34}")
BOUND_SECONDS = 60     # a hang fails the case after this long; nothing is timed
_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


@dataclass(frozen=True)
class Case:
    family: str
    id: str
    input: object = None


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(argv: Sequence[str]) -> Done:
    """`llmpack ARGV` in this process (fast): what it prints and its exit code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:     # argparse
            code = int(exit_.code or 0)
    return Done(code, out.getvalue(), err.getvalue())


def run_process(argv: Sequence[str], *, cwd: Path | None = None, without_root_reads: bool = False,
                env: dict[str, str] | None = None) -> Done:
    """`llmpack ARGV` in a child process, bounded in time (a hang fails, it does not block the suite).

    `without_root_reads`: the child loses CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, the capabilities
    by which root reads a file whatever its mode, so a file of mode 000 is as unreadable to it as to
    anyone (it stays root otherwise)."""
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "generator", *argv], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=BOUND_SECONDS, check=False,
                          preexec_fn=_drop_root_reads if without_root_reads else None)
    return Done(done.returncode, done.stdout, done.stderr)


def can_drop_root_reads() -> bool:
    return sys.platform == "linux" and os.geteuid() == 0


def _drop_root_reads() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def assert_clean_error(done: Done, where: str, *parts: str, code: int = 1) -> None:
    """A located error: exit `code`, one `error: WHERE...` message holding `parts`, no traceback, no token."""
    assert "Traceback" not in done.err, done.err
    assert done.code == code, (done.code, done.err)
    assert done.err.startswith(f"error: {where}"), done.err
    for part in parts:
        assert part in done.err, (part, done.err)
    assert not LEAK.search(done.text), done.text
