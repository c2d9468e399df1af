"""The one exception tree of llmpack.

Every error a user can cause is an `LlmpackError`; the CLI prints `str(error)` and
exits with `error.exit_code`. Anything else is a bug and gets a traceback.
Subclasses carry the place (file, line, JSON path, object) as fields, so tests and
tools can read them without parsing text. The text of every error and every location
goes through `tokens.redact`, so no message can quote a Hugging Face token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from generator import EXIT_INVALID, EXIT_USAGE
from generator.tokens import redact


@dataclass(frozen=True)
class Location:
    """Where a value was written: a file and a 1-based line, or a command-line flag."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        source = redact(self.source)
        return source if self.line is None else f"{source}:{self.line}"


# Control characters and line breaks, which no name, key or path llmpack prints may hold (a pattern:
# compiled, and cached, by re when first needed).
CONTROL = "[\x00-\x1f\x7f-\x9f\u2028\u2029]"


def json_pointer(path: Sequence[str | int]) -> str:
    """`("model", "env", 0)` -> `/model/env/0` (RFC 6901 escaping). A control character or line break
    in a key is shown as `\\uXXXX`, so a key can never break or forge a line of a message."""
    if not path:
        return "/"
    text = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return re.sub(CONTROL, lambda m: f"\\u{ord(m.group()):04x}", text)


class LlmpackError(Exception):
    """Root of all errors a user can cause."""

    exit_code = EXIT_INVALID

    def __str__(self) -> str:
        return redact(super().__str__())


class UsageError(LlmpackError):
    """The command line itself is wrong (unknown environment, bad flag)."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Problem:
    """One located finding: `FILE:LINE at /json/path: message`."""

    location: Location | None
    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        where = f"{self.location} at " if self.location else ""
        return f"{where}{json_pointer(self.path)}: {self.message}"


class ValuesError(LlmpackError):
    """One or more problems in the values, each pointing at the layer that set the value."""

    def __init__(self, problems: Sequence[Problem], context: str = "") -> None:
        self.problems = tuple(problems)
        self.context = context
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"invalid values{' for ' + self.context if self.context else ''}"
        if len(self.problems) == 1:
            return f"{head}: {self.problems[0]}"
        lines = [f"{head} ({len(self.problems)} problems):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class LoadError(LlmpackError):
    """A values file cannot be read or parsed."""

    def __init__(self, location: Location, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(f"{location}: {message}")


class FileError(LlmpackError):
    """The outside world refused a read or a write (files.py): where, what failed, and what to do."""

    def __init__(self, location: Location, message: str, code: int | None = None) -> None:
        self.location = location
        self.message = message
        self.code = code          # the errno, when the system gave one
        super().__init__(f"{location}: {message}")


class TemplateError(LlmpackError):
    """A chart template failed: a bug in the chart, reported with the template's place."""

    def __init__(self, template: str, line: int | None, message: str) -> None:
        self.template = template
        self.line = line
        self.message = message
        where = f"{template}:{line}" if line else template
        super().__init__(f"template error at {where}: {message}")


@dataclass(frozen=True)
class Finding:
    """A problem in a rendered object: the file it would be written to and a field path."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class CheckError(LlmpackError):
    """The rendered bundle would be refused by Kubernetes or KServe; nothing was written."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        lines = [f"the rendered bundle is invalid ({len(self.findings)} finding"
                 f"{'' if len(self.findings) == 1 else 's'}); nothing was written:"]
        lines += [f"  - {f}" for f in self.findings]
        super().__init__("\n".join(lines))


class ToolError(LlmpackError):
    """An external tool or schema source is missing or failed; the message says how to get it."""
