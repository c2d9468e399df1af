"""`make bench`: llmpack measured against `helm template` in the same run (issue #16).

Every figure is a real process on deterministic inputs in a temporary folder (bench/projects.py);
helm renders bench/helm-peer, a chart of the same four objects written for this benchmark (its Job
runs llmpack's download script, copied in at run time).
llmpack is this tree's wheel installed in a virtualenv of its own (bench/install.py: no editable-
install import hook, as a user runs it). llmpack and helm runs are interleaved (ABBA...), repeated,
and reported as medians with their spread (lowest and highest run against the median). A Helm
user's fleet of N releases is N `helm template` calls; llmpack's is one `render` of an environment
of N releases. Each figure has a cache folder of its own (LLMPACK_CACHE_DIR), and the table says
which of llmpack's caches were warm: converted schemas, kubeconform verdicts, compiled templates
(the no-op figures also use the project's render stamp).

  (a) 300 releases, full validation (kubeconform with the real CRDs over every object: the verdict
      cache is emptied before each run), written to rendered/, vs 300 `helm template` calls written
      to files: <= 0.1x
  (b) one release, every check including the CRD schema check (--stdout), a new process, vs one helm
      call: <= 1.5x. First with nothing changed since the last render: the render stamp answers with
      the stream that render printed (stamp.py; any changed input makes a full render). Then full
      renders (the project's stamps emptied before each run), target shown too: every cache warm (all
      four verdicts are cached, so kubeconform does not run), then verdicts cold, then every cache cold
  (c) one release without the CRD schema check: <= 1.2x, the same way (stamp; then full renders with
      the compiled templates warm, then cold)
  (d) no-op re-render (nothing changed, full validation): prod <= 0.1 s, 300 releases <= 0.3 s
  (e) per-release cost at 10, 100, 1000: the marginal cost from the size before, e.g.
      (T(1000) - T(100)) / 900, full validation with the verdict cache emptied, written; flat = the
      1000 figure within 1.5x of the 100 one, in CPU time (user + system of llmpack and kubeconform),
      which background load on a shared machine disturbs far less than wall time
  (f) peak memory of the render of 1000 releases (verdicts cold: kubeconform validates all 4000
      objects while llmpack renders): <= 150 MiB resident at once (llmpack and kubeconform together,
      sampled from /proc; wait4's exact ru_maxrss is shown too)

LLMPACK_BENCH_QUICK=1 runs each figure fewer times. Nothing here runs in the tests.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import harness
import helm_tool
import install
import projects
import yaml

REPO = Path(__file__).resolve().parent.parent
PEER_CHART = REPO / "bench" / "helm-peer"
DOWNLOAD_SCRIPT = REPO / "charts" / "kserve-multinode" / "files" / "download.py"   # the peer's Job runs it too
TOOLS = REPO / ".tools" / "bin"
NO_CRD_CHECK = "--no-crd-check"        # llmpack's flag to skip the CRD schema check
NO_CRD_CHECK_BEFORE = "--skip-kubeconform"   # its name before the rename, for older trees
QUICK = os.environ.get("LLMPACK_BENCH_QUICK") == "1"
SMALL = 3 if QUICK else 7               # repeats of the one-release figures
BIG = 1 if QUICK else 3                 # repeats of the fleet figures
FLEET = 300
SIZES = (1, 10, 100, 1000)
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    figure: str
    llmpack: str
    helm: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: bool | None = None
    warm: str = "-"             # which of llmpack's caches were warm


@dataclass(frozen=True)
class Context:
    tmp: Path
    llmpack: Path               # the installed wheel's command (bench/install.py)
    env: dict[str, str]         # llmpack's environment (without LLMPACK_CACHE_DIR: see `cache`)
    helm: Path
    helm_env: dict[str, str]    # helm's, with its cache and config inside tmp
    no_crd_check: str           # NO_CRD_CHECK, or its old name when this llmpack predates the rename

    def render(self, root: Path, env: str, *args: str) -> list[str]:
        return [str(self.llmpack), "-C", str(root), "render", "--env", env, "-q", *args]

    def cache(self, name: str) -> tuple[Path, dict[str, str]]:
        """A cache folder of one figure's own, and llmpack's environment using it."""
        folder = self.tmp / "caches" / name
        return folder, {**self.env, "LLMPACK_CACHE_DIR": str(folder)}

    def helm_template(self, release: str, values: Path) -> list[str]:
        return [str(self.helm), "template", release, str(self.tmp / "helm-peer"), "-f", str(values),
                "--namespace", projects.NAMESPACE]


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def shown(sample: harness.Sample) -> str:
    return f"{seconds(sample.median)} ({sample.spread()})"


def versus(figure: str, ours: harness.Sample, theirs: harness.Sample, limit: float | None) -> Row:
    """A figure against helm's from the same interleaved runs; `limit=None`: for information."""
    ratio, cpu = ours.median / theirs.median, ours.cpu / theirs.cpu
    return Row(figure, shown(ours), shown(theirs), f"{ratio:.2f}x (cpu {cpu:.2f}x)",
               "-" if limit is None else f"<= {limit}x", None if limit is None else ratio <= limit)


def absolute(figure: str, ours: harness.Sample, limit: float, note: str = "", warm: str = "-") -> Row:
    return Row(figure, f"{shown(ours)}, cpu {seconds(ours.cpu)}{note}", target=f"<= {seconds(limit)}",
               met=ours.median <= limit, warm=warm)


def emptied(*folders: Path) -> Callable[[], None]:
    """What empties these folders (run before a timed run: its caches cold, its output gone)."""
    def empty() -> None:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    return empty


def settle() -> None:
    """Let a project just written age past the stamp's settling time (stamp.py keeps no stamp of files
    younger than that), as a project does between a user's renders."""
    time.sleep(2.2)


def rendered_again(run: Callable[[], harness.Run], root: Path, repeats: int) -> tuple[harness.Sample, int]:
    """Re-render with nothing changed: the time, and how many files it wrote (must be 0)."""
    run()
    before = harness.files_with_times(root / "rendered")
    sample = harness.interleaved(repeats, run)[0]
    after = harness.files_with_times(root / "rendered")
    return sample, sum(1 for path, stamp in after.items() if before.get(path) != stamp) + len(set(before) - set(after))


ALL = "schemas, verdicts, templates"


def single_release(ctx: Context) -> list[Row]:
    root = projects.single(ctx.tmp / "single")
    [(name, values)] = projects.helm_values(ctx.tmp / "single-helm", 1)
    full = ctx.render(root, "one", "--stdout")
    cache, env = ctx.cache("single")
    stamps = root / ".cache"       # the project's render stamps: emptied, every render is a full one
    helm_once = lambda: harness.run(ctx.helm_template(name, values), ctx.helm_env)  # noqa: E731
    ours = lambda *extra: lambda: harness.run([*full, *extra], env)  # noqa: E731
    settle()
    ours()()   # fills the caches and keeps a stamp
    kept, helm_k = harness.interleaved(SMALL, ours(), helm_once)
    warm, helm_b = harness.interleaved(SMALL, ours(), helm_once, before=emptied(stamps))
    verdicts, helm_v = harness.interleaved(SMALL, ours(), helm_once, before=emptied(stamps, cache / "verdicts"))
    cold, helm_cold = harness.interleaved(SMALL, ours(), helm_once, before=emptied(stamps, cache))
    ours(ctx.no_crd_check)()
    kept_c, helm_kc = harness.interleaved(SMALL, ours(ctx.no_crd_check), helm_once)
    fast, helm_c = harness.interleaved(SMALL, ours(ctx.no_crd_check), helm_once, before=emptied(stamps))
    compile_, helm_t = harness.interleaved(SMALL, ours(ctx.no_crd_check), helm_once,
                                           before=emptied(stamps, cache / "jinja"))
    interpreter = str(ctx.llmpack.with_name("python"))
    python, libraries, version = harness.interleaved(
        SMALL, lambda: harness.run([interpreter, "-c", "pass"]),
        lambda: harness.run([interpreter, "-c", "import jinja2, yaml"]),   # what a full render cannot do without
        lambda: harness.run([str(ctx.llmpack), "--version"]))
    return [with_warm(versus("(b) 1 release, every check incl. CRD schemas; nothing changed: the render stamp "
                             "answers", kept, helm_k, 1.5), f"stamp, {ALL}"),
            with_warm(versus("    same, a full render (no stamp); verdicts cached: no kubeconform run", warm, helm_b,
                             1.5), ALL),
            with_warm(versus("    same, verdicts cold (kubeconform validates every object)", verdicts, helm_v, None),
                      "schemas, templates"),
            with_warm(versus("    same, every cache cold (converts the CRDs first)", cold, helm_cold, None), "none"),
            with_warm(versus(f"(c) 1 release, all but the CRD schema check ({ctx.no_crd_check}); nothing changed: "
                             "the render stamp answers", kept_c, helm_kc, 1.2), "stamp, templates"),
            with_warm(versus("    same, a full render (no stamp)", fast, helm_c, 1.2), "templates"),
            with_warm(versus("    same, compiled templates cold", compile_, helm_t, None), "none"),
            Row("    floor: python -c pass / python -c 'import jinja2, yaml' / llmpack --version",
                f"{shown(python)} / {shown(libraries)} / {shown(version)}")]


def with_warm(row: Row, warm: str) -> Row:
    return Row(row.figure, row.llmpack, row.helm, row.ratio, row.target, row.met, warm)


def fleet_300(ctx: Context) -> tuple[list[Row], harness.Sample]:
    root = projects.fleet(ctx.tmp / f"fleet-{FLEET}", FLEET)
    out = ctx.tmp / f"helm-out-{FLEET}"
    calls = [(ctx.helm_template(name, path), out / f"{name}.yaml")
             for name, path in projects.helm_values(ctx.tmp / f"fleet-{FLEET}-helm", FLEET)]
    cache, env = ctx.cache("fleet")

    def fresh() -> None:
        shutil.rmtree(root / "rendered", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    def cold() -> None:
        fresh()
        shutil.rmtree(cache / "verdicts", ignore_errors=True)

    ours = lambda: harness.run(ctx.render(root, "fleet"), env)  # noqa: E731
    settle()
    ours()    # fills the schema and template caches
    ours_sample, helm_sample = harness.interleaved(BIG, ours, lambda: harness.run_all(calls, ctx.helm_env),
                                                   before=cold)
    warm, helm_warm = harness.interleaved(BIG, ours, lambda: harness.run_all(calls, ctx.helm_env), before=fresh)
    noop, written = rendered_again(ours, root, BIG)
    return ([with_warm(versus(f"(a) {FLEET} releases, full validation (1 call vs {FLEET} helm calls)", ours_sample,
                              helm_sample, 0.1), "schemas, templates"),
             with_warm(versus("    same, verdicts cached (kubeconform does not run)", warm, helm_warm, None), ALL),
             absolute(f"(d) no-op re-render, {FLEET} releases", noop, 0.3, f", {written} files written",
                      f"stamp, {ALL}")],
            helm_sample)


def noop_prod(ctx: Context) -> Row:
    root = projects.example(ctx.tmp / "prod", REPO)
    _, env = ctx.cache("prod")
    settle()
    sample, written = rendered_again(lambda: harness.run(ctx.render(root, "prod"), env), root, SMALL)
    return absolute("(d) no-op re-render, prod example (2 releases + Argo CD)", sample, 0.1,
                    f", {written} files written", f"stamp, {ALL}")


def per_release(ctx: Context, helm_fleet: harness.Sample) -> list[Row]:
    roots = {n: projects.fleet(ctx.tmp / f"size-{n}", n) for n in SIZES}
    cache, env = ctx.cache("sizes")   # one cache for all sizes; the verdicts are emptied before each run

    def fresh() -> None:
        for root in roots.values():
            shutil.rmtree(root / "rendered", ignore_errors=True)
        shutil.rmtree(cache / "verdicts", ignore_errors=True)

    subjects = [lambda root=root: harness.run(ctx.render(root, "fleet"), env) for root in roots.values()]
    subjects[0]()    # fills that cache
    samples = dict(zip(SIZES, harness.interleaved(BIG, *subjects, before=fresh), strict=True))
    helm_per = f"{seconds(helm_fleet.median / FLEET)} (cpu {seconds(helm_fleet.cpu / FLEET)}) per call"
    pairs = list(itertools.pairwise(SIZES))
    marginal = {n: ((samples[n].median - samples[m].median) / (n - m), (samples[n].cpu - samples[m].cpu) / (n - m))
                for m, n in pairs}
    rows = []
    for smaller, n in pairs:
        (wall, cpu), flat = marginal[n], marginal[n][1] / marginal[100][1]
        total = f"total {seconds(samples[n].median)}, {samples[n].spread()}"
        rows.append(Row(f"(e) per release, {smaller} -> {n} ({total})",
                        f"{wall * 1000:.1f} ms (cpu {cpu * 1000:.1f} ms)", helm_per, f"cpu {flat:.2f}x of 100",
                        "<= 1.5x of 100" if n == 1000 else "-", flat <= 1.5 if n == 1000 else None,
                        "schemas, templates"))
    fresh()
    memory = harness.memory(ctx.render(roots[1000], "fleet"), env)
    parts = ", ".join(f"{name.split('-')[0]} {' + '.join(f'{kib / 1024:.0f}' for kib in kibs)}"
                      for name, kibs in sorted(memory.peaks_kib.items()))
    rows.append(Row("(f) peak RSS, 1000 releases (resident at once; each process's own)",
                    f"{memory.tree_peak_kib / 1024:.0f} MiB ({parts}; ru_maxrss {memory.max_rss_kib / 1024:.0f})",
                    target="<= 150 MiB", met=memory.tree_peak_kib / 1024 <= 150, warm="schemas, templates"))
    return rows


def verify_validation(ctx: Context, root: Path, env: str) -> str:
    """Prove that render runs kubeconform, strict, over every object: a wrapper adds -summary and logs."""
    log = ctx.tmp / f"kubeconform-{env}.log"
    wrapper = ctx.tmp / f"kubeconform-{env}"
    real = ctx.env.get("LLMPACK_KUBECONFORM") or str(TOOLS / "kubeconform-v0.7.0")
    wrapper.write_text(f'#!/bin/bash\nset -o pipefail\necho "$*" >> {log}.args\n'
                       f'"{real}" -summary "$@" | tee -a {log}\n')
    wrapper.chmod(0o755)
    shutil.rmtree(root / "rendered", ignore_errors=True)
    _, cached = ctx.cache(f"verify-{env}")
    harness.run(ctx.render(root, env), {**cached, "LLMPACK_KUBECONFORM": str(wrapper)})
    summaries = [report["summary"] for report in json_stream(log.read_text())]
    objects = sum(1 for p in (root / "rendered" / env).rglob("*.yaml") if p.name != "kustomization.yaml")
    valid, skipped = sum(s["valid"] for s in summaries), sum(s["skipped"] for s in summaries)
    strict = all("-strict" in line.split() for line in (log.with_name(log.name + ".args")).read_text().splitlines())
    if valid != objects or skipped or not strict:
        raise SystemExit(f"render of {env} did not validate every object: kubeconform said valid {valid} of "
                         f"{objects}, skipped {skipped}, strict {strict}")
    first = {p.relative_to(root): p.read_bytes() for p in (root / "rendered").rglob("*") if p.is_file()}
    shutil.rmtree(root / "rendered")
    harness.run(ctx.render(root, env), {**cached, "LLMPACK_KUBECONFORM": str(wrapper)})
    again = {p.relative_to(root): p.read_bytes() for p in (root / "rendered").rglob("*") if p.is_file()}
    if len(json_stream(log.read_text())) != len(summaries) or again != first:
        raise SystemExit(f"the second render of {env} ran kubeconform again or wrote other files")
    return (f"{env}: kubeconform -strict validated {valid}/{objects} objects, 0 skipped; rendered again with "
            "the verdicts cached: no kubeconform run, the same files")


def json_stream(text: str) -> list[dict[str, dict[str, int]]]:
    """The JSON documents of a text that holds several, one after the other."""
    decoder, found, index, text = json.JSONDecoder(), [], 0, text.strip()
    while index < len(text):
        document, index = decoder.raw_decode(text, index)
        found.append(document)
        index = len(text) - len(text[index:].lstrip())
    return found


def same_objects(ctx: Context) -> str:
    """The peer chart emits the same kinds with about the same number of fields as llmpack."""
    root = projects.single(ctx.tmp / "compare")
    [(name, values)] = projects.helm_values(ctx.tmp / "compare-helm", 1)
    ours = subprocess.run([*ctx.render(root, "one", "--stdout"), ctx.no_crd_check], env=ctx.cache("compare")[1],
                          capture_output=True, text=True, check=True).stdout
    theirs = subprocess.run(ctx.helm_template(name, values), env=ctx.helm_env, capture_output=True, text=True,
                            check=True).stdout
    counts = [{d["kind"]: leaves(d) for d in yaml.safe_load_all(text) if d} for text in (ours, theirs)]
    if sorted(counts[0]) != sorted(counts[1]):
        raise SystemExit(f"the peer chart renders {sorted(counts[1])}, llmpack {sorted(counts[0])}")
    return ", ".join(f"{kind} {counts[0][kind]}/{counts[1][kind]}" for kind in sorted(counts[0]))


def leaves(node: object) -> int:
    if isinstance(node, dict):
        return sum(leaves(v) for v in node.values())
    if isinstance(node, list):
        return sum(leaves(v) for v in node)
    return 1


def table(rows: Sequence[Row]) -> list[str]:
    head = ("figure", "llmpack", "helm (same run)", "ratio", "target", "met", "llmpack caches warm")
    cells = [head, *[(r.figure, r.llmpack, r.helm, r.ratio, r.target,
                      "-" if r.met is None else "yes" if r.met else "NO", r.warm) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    return [lines[0], "  ".join("-" * w for w in widths), *lines[1:]]


def context(tmp: Path) -> Context:
    env = {**os.environ, "LLMPACK_CRD_DIR": os.environ.get("LLMPACK_CRD_DIR") or str(REPO.parent / "shared" / "crds")}
    env.pop("LLMPACK_CACHE_DIR", None)   # each figure has its own (Context.cache)
    if not env.get("LLMPACK_KUBECONFORM") and (TOOLS / "kubeconform-v0.7.0").is_file():
        env["LLMPACK_KUBECONFORM"] = str(TOOLS / "kubeconform-v0.7.0")
    helm, _ = helm_tool.find_or_fetch(TOOLS)
    helm_home = tmp / "helm-home"
    helm_env = {**os.environ, **{f"HELM_{k}_HOME": str(helm_home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}}
    llmpack = install.installed(REPO, tmp / "llmpack")
    peer_files = tmp / "helm-peer" / "files"   # the peer chart, with llmpack's download script in its files/
    shutil.copytree(PEER_CHART, peer_files.parent)
    peer_files.mkdir()
    shutil.copy2(DOWNLOAD_SCRIPT, peer_files / "download.py")
    usage = subprocess.run([str(llmpack), "render", "--help"], env=env, capture_output=True, text=True).stdout
    return Context(tmp, llmpack, env, helm, helm_env, NO_CRD_CHECK if NO_CRD_CHECK in usage else NO_CRD_CHECK_BEFORE)


def step(what: str, measure: Callable[..., T], *args: object) -> T:
    print(f"measuring: {what} ...", file=sys.stderr, flush=True)
    return measure(*args)


def main() -> int:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as tmp:
        ctx = context(Path(tmp))
        print(f"helm {helm_tool.version(ctx.helm)} ({ctx.helm}); kubeconform {ctx.env.get('LLMPACK_KUBECONFORM')}; "
              f"CRDs {ctx.env['LLMPACK_CRD_DIR']}; llmpack {ctx.llmpack} (this tree's wheel); {os.cpu_count()} cores",
              flush=True)
        print(f"fields per object, llmpack/helm: {same_objects(ctx)}", flush=True)
        print(verify_validation(ctx, projects.single(ctx.tmp / "verify-one"), "one"), flush=True)
        print(verify_validation(ctx, projects.fleet(ctx.tmp / "verify-fleet", FLEET), "fleet"), flush=True)
        rows = step("one release", single_release, ctx)
        fleet_rows, helm_fleet = step(f"{FLEET} releases", fleet_300, ctx)
        rows = [*fleet_rows[:2], *rows, step("prod no-op", noop_prod, ctx), fleet_rows[2],
                *step("10 to 1000 releases", per_release, ctx, helm_fleet)]
    end = os.getloadavg()[0]
    print(f"repeats: {SMALL} (one release, prod), {BIG} (fleets); wall-time medians (spread: lowest/highest run "
          f"vs median), cpu = user + system; load average {load[0]:.1f} at start, {end:.1f} at end")
    if max(load[0], end) > (os.cpu_count() or 1):
        print("warning: the machine was busier than its cores; wall times are inflated, the cpu ratios hold better")
    print("\n".join(table(rows)))
    missed = [r.figure.strip() for r in rows if r.met is False]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
