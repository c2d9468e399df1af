"""`make bench`: how fast llmpack renders and validates, and how much memory it needs.

Every figure comes from real `llmpack` processes on synthetic projects in a temporary folder:

- cold render of one release (all checks but kubeconform): median of repeated process runs,
  with the share of Python start-up and imports;
- fleet render of 10 / 100 / 1000 releases x 3 environments in one call: time per release and
  peak memory (RSS of the process);
- validation of the fleet (kubeconform, strict, with the CRDs of ../shared/crds or LLMPACK_CRD_DIR);
- a no-op re-render: its time, and proof that it wrote no file.
Targets (on a 2-core machine) are printed next to the figures; nothing here fails a build.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ENVS = ("alpha", "beta", "gamma")
SIZES = (10, 100, 1000)
COLD_RUNS = int(os.environ.get("LLMPACK_BENCH_RUNS", "15"))


def project(root: Path, releases: int, envs: tuple[str, ...] = ENVS) -> Path:
    for env in envs:
        folder = root / "overlays" / env / "releases"
        folder.mkdir(parents=True)
        (root / "overlays" / env / "values.yaml").write_text(f"namespace: llm-{env}\n")
        for index in range(releases):
            (folder / f"r{index:04d}.yaml").write_text(
                f"name: model-{index}\nmodel: {{storageUri: pvc://claim-{index}/models/m}}\n")
    return root


def run(root: Path, *args: str) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) and stdout of one llmpack process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    process = subprocess.Popen([PYTHON, "-m", "generator", "-C", str(root), *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    out = process.stdout.read() if process.stdout else ""
    err = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"llmpack {' '.join(args)} failed:\n{err}")
    return elapsed, usage.ru_maxrss, out


def files_with_times(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def python_startup() -> float:
    runs = []
    for _ in range(COLD_RUNS):
        started = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], check=True)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def imports() -> float:
    code = ("import generator.cli, generator.pipeline, generator.render, generator.validate, jinja2, "
            "yaml")   # what a render imports (jsonschema only when values are invalid)
    runs = []
    for _ in range(COLD_RUNS):
        started = time.perf_counter()
        subprocess.run([PYTHON, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> int:
    rows: list[tuple[str, str, str]] = []
    crds = os.environ.get("LLMPACK_CRD_DIR") or str(REPO.parent / "shared" / "crds")
    os.environ["LLMPACK_CRD_DIR"] = crds
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as tmp:
        root = project(Path(tmp) / "single", 1, ("single",))
        times = []
        for _ in range(COLD_RUNS):
            shutil.rmtree(root / "rendered", ignore_errors=True)
            times.append(run(root, "render", "--env", "single", "-q", "--skip-kubeconform")[0])
        cold = statistics.median(times)
        start, loaded = python_startup(), imports()
        rows.append((f"cold render, 1 release (median of {COLD_RUNS})", f"{cold * 1000:.0f} ms", "<= 400 ms"))
        rows.append(("  of which Python start-up", f"{start * 1000:.0f} ms", ""))
        rows.append(("  of which imports (start-up included)", f"{loaded * 1000:.0f} ms", ""))
        rows.append(("  of which work", f"{(cold - loaded) * 1000:.0f} ms", ""))
        for size in SIZES:
            root = project(Path(tmp) / f"fleet-{size}", size)
            elapsed, rss, _ = run(root, "render", "--all", "-q", "--skip-kubeconform")
            per = (elapsed - loaded) / (size * len(ENVS)) * 1000
            target = "<= 3 s" if size == 100 else ""
            rows.append((f"fleet render, {size} x {len(ENVS)} releases", f"{elapsed:.2f} s", target))
            rows.append(("  per release (after start-up and imports)", f"{per:.1f} ms", "flat from 10 to 1000"))
            rows.append(("  peak memory", f"{rss / 1024:.0f} MiB", "<= 200 MiB" if size == 1000 else ""))
            before = files_with_times(root / "rendered")
            again, _, _ = run(root, "render", "--all", "-q", "--skip-kubeconform")
            written = sum(1 for path, stamp in files_with_times(root / "rendered").items() if before.get(path) != stamp)
            rows.append(("  no-op re-render", f"{again:.2f} s, {written} files written", "0 files"))
            if size <= 100:
                first, _, _ = run(root, "check")    # converts the CRDs into the project's schema cache
                warm, _, _ = run(root, "check")
                rows.append((f"  validation, all {size * len(ENVS)} (kubeconform)", f"{warm:.2f} s "
                             f"({first:.2f} s with a cold schema cache)", ""))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'result':<26} target")
    print(f"{'-' * width}  {'-' * 26} {'-' * 20}")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:<26} {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
