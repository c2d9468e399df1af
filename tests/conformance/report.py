"""What the conformance run found, as one Markdown report (printed at the end, and written to
.cache/conformance/report.md): the matrix, every difference between llmpack's plan and the
controller, the admission table, the GPU allocation table and the known-bug observations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from compare import NORMALISED, Difference

from generator.releases import RELEASES

Say = Callable[[str], None]   # a progress line on the terminal


def _cell(value: object, width: int = 120) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class AdmissionRow:
    release: str
    case: str
    llmpack: str       # what llmpack does at render time
    kserve: str        # rejected by the webhook / API server, or what the controller did
    verdict: str       # equal, llmpack stricter, NOT CAUGHT by llmpack
    message: str


@dataclass(frozen=True)
class GpuRow:
    release: str
    case: str          # head GPUs, worker GPUs, TP, PP
    expected: str      # gpu_allocation(...)
    controller: str
    agree: bool


@dataclass
class Report:
    path: Path
    cells: dict[tuple[str, str, str], str] = field(default_factory=dict)   # (env, target, version) -> outcome
    differences: list[Difference] = field(default_factory=list)
    admission: list[AdmissionRow] = field(default_factory=list)
    gpu: list[GpuRow] = field(default_factory=list)
    bugs: list[str] = field(default_factory=list)

    def outcome(self, test: pytest.TestReport) -> None:
        cell = dict(test.user_properties).get("matrix-cell")
        if not isinstance(cell, tuple):
            return
        if test.skipped and isinstance(test.longrepr, tuple):
            text = f"skipped: {test.longrepr[2].removeprefix('Skipped: ')}"
        else:
            text = test.outcome
        if self.cells.get(cell, "passed") == "passed" or test.failed:
            self.cells[cell] = text

    @staticmethod
    def _short(result: str) -> str:
        if "refused by llmpack" in result:
            return "refused by llmpack"
        return result if result in ("passed", "failed") else result.partition(":")[0]

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(self._lines()) + "\n")
        return self.path

    def _lines(self) -> list[str]:
        versions = list(dict.fromkeys(v for v in RELEASES if any(c[2] == v for c in self.cells)))
        rows = sorted({(e, t) for e, t, _ in self.cells})
        lines = ["## Matrix (environment x target x KServe release)", "",
                 "| env | target | " + " | ".join(RELEASES[v].patch for v in versions) + " |",
                 "| --- | --- | " + " | ".join("---" for _ in versions) + " |"]
        lines += [f"| {e} | {t} | " + " | ".join(self._short(self.cells.get((e, t, v), "-")) for v in versions) + " |"
                  for e, t in rows]
        skipped = sorted({r for r in self.cells.values() if r.startswith(("skipped", "refused"))})
        lines += ["", *[f"- {_cell(r, 400)}" for r in skipped]]
        title = f"## Differences between llmpack's plan (target raw) and the controller ({len(self.differences)})"
        lines += ["", title, "", *_header("release", "env", "target", "object", "field", "llmpack", "controller")]
        lines += [f"| {d.release} | {d.env} | {d.target} | {d.obj} | {_cell(d.field)} | {_cell(d.llmpack)} | "
                  f"{_cell(d.controller)} |" for d in self.differences]
        lines += ["", "The same differences, grouped (NAME = the InferenceService name):", "",
                  *_header("object", "field", "llmpack", "controller", "releases", "environments")]
        groups: dict[tuple[str, str, str, str], list[Difference]] = {}
        for d in self.differences:
            groups.setdefault(d.general(), []).append(d)
        for (obj, name, mine, theirs), found in groups.items():
            releases = ", ".join(sorted({d.release for d in found}, key=lambda v: [int(p) for p in v.split(".")]))
            envs = ", ".join(sorted({d.env for d in found}))
            lines.append(f"| {obj} | {_cell(name)} | {_cell(mine)} | {_cell(theirs)} | {releases} | {envs} |")
        lines += ["", "Normalised before comparing (and why):", ""]
        lines += [f"- {what}: {why}" for what, why in NORMALISED.items()]
        lines += ["", "## Admission: llmpack's render-time rules vs the real webhooks and API server", "",
                  *_header("release", "case", "llmpack", "KServe / Kubernetes", "verdict", "message")]
        lines += [f"| {a.release} | {a.case} | {_cell(a.llmpack)} | {_cell(a.kserve)} | {a.verdict} | "
                  f"{_cell(a.message, 200)} |" for a in self.admission]
        lines += ["", "## GPU allocation: generator.releases.gpu_allocation vs the controller", "",
                  *_header("release", "head, worker, TP, PP", "gpu_allocation", "controller", "agree")]
        lines += [f"| {g.release} | {g.case} | {g.expected} | {_cell(g.controller)} | {'yes' if g.agree else 'NO'} |"
                  for g in self.gpu]
        lines += ["", "## Known upstream bugs", ""] + [f"- {b}" for b in self.bugs]
        return lines


def _header(*names: str) -> list[str]:
    """A markdown table's first two lines."""
    return ["| " + " | ".join(names) + " |", "| " + " | ".join("---" for _ in names) + " |"]
