"""`make bench`: llmpack measured against `helm template` in the same run (issue #16).

Every figure is a real process on deterministic inputs in a temporary folder (bench/projects.py);
helm renders bench/helm-peer, a chart of the same four objects written for this benchmark.
llmpack and helm runs are interleaved (ABBA...), repeated, and reported as medians with their
spread (lowest and highest run against the median). A Helm user's fleet of N releases is N
`helm template` calls; llmpack's is one `render` of an environment of N releases.

  (a) 300 releases, full validation (kubeconform with the real CRDs), written to rendered/,
      vs 300 `helm template` calls written to files: <= 0.1x
  (b) one release, every check including the CRD schema check (--stdout), vs one helm call: <= 1.5x;
      with llmpack's converted-schema cache warm (the row below it: cold)
  (c) one release without the CRD schema check: <= 1.2x
  (d) no-op re-render (nothing changed, full validation): prod <= 0.1 s, 300 releases <= 0.3 s
  (e) per-release cost at 10, 100, 1000: the marginal cost from the size before, e.g.
      (T(1000) - T(100)) / 900, full validation, written; flat = the 1000 figure within 1.5x of
      the 100 one, in CPU time (user + system of llmpack and
      kubeconform), which background load on a shared machine disturbs far less than wall time
  (f) peak memory of the render of 1000 releases: <= 150 MiB resident at once (llmpack and
      kubeconform together, sampled from /proc; wait4's exact ru_maxrss is shown too)

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import harness
import helm_tool
import projects
import yaml

REPO = Path(__file__).resolve().parent.parent
PEER_CHART = REPO / "bench" / "helm-peer"
TOOLS = REPO / ".tools" / "bin"
LLMPACK = Path(sys.executable).parent / "llmpack"
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


@dataclass(frozen=True)
class Context:
    tmp: Path
    env: dict[str, str]         # llmpack's environment
    helm: Path
    helm_env: dict[str, str]    # helm's, with its cache and config inside tmp
    no_crd_check: str           # NO_CRD_CHECK, or its old name when this llmpack predates the rename

    def render(self, root: Path, env: str, *args: str) -> list[str]:
        return [str(LLMPACK), "-C", str(root), "render", "--env", env, "-q", *args]

    def helm_template(self, release: str, values: Path) -> list[str]:
        return [str(self.helm), "template", release, str(PEER_CHART), "-f", str(values),
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


def absolute(figure: str, ours: harness.Sample, limit: float, note: str = "") -> Row:
    return Row(figure, f"{shown(ours)}, cpu {seconds(ours.cpu)}{note}", target=f"<= {seconds(limit)}",
               met=ours.median <= limit)


def rendered_again(run: Callable[[], harness.Run], root: Path, repeats: int) -> tuple[harness.Sample, int]:
    """Re-render with nothing changed: the time, and how many files it wrote (must be 0)."""
    run()
    before = harness.files_with_times(root / "rendered")
    sample = harness.interleaved(repeats, run)[0]
    after = harness.files_with_times(root / "rendered")
    return sample, sum(1 for path, stamp in after.items() if before.get(path) != stamp) + len(set(before) - set(after))


def single_release(ctx: Context) -> list[Row]:
    root = projects.single(ctx.tmp / "single")
    [(name, values)] = projects.helm_values(ctx.tmp / "single-helm", 1)
    full = ctx.render(root, "one", "--stdout")

    def cold_cache() -> None:
        shutil.rmtree(root / ".cache", ignore_errors=True)

    helm_once = lambda: harness.run(ctx.helm_template(name, values), ctx.helm_env)  # noqa: E731
    harness.run(full, ctx.env)   # fills the converted-schema cache
    warm, helm_b = harness.interleaved(SMALL, lambda: harness.run(full, ctx.env), helm_once)
    cold, helm_cold = harness.interleaved(SMALL, lambda: harness.run(full, ctx.env), helm_once, before=cold_cache)
    fast, helm_c = harness.interleaved(SMALL, lambda: harness.run([*full, ctx.no_crd_check], ctx.env),
                                       helm_once)
    python, version = harness.interleaved(SMALL, lambda: harness.run([sys.executable, "-c", "pass"]),
                                          lambda: harness.run([str(LLMPACK), "--version"]))
    return [versus("(b) 1 release, every check incl. CRD schemas; schema cache warm", warm, helm_b, 1.5),
            versus("    same, schema cache cold (converts the CRDs first)", cold, helm_cold, None),
            versus(f"(c) 1 release, all but the CRD schema check ({ctx.no_crd_check})", fast, helm_c, 1.2),
            Row("    floor: python -c pass / llmpack --version", f"{shown(python)} / {shown(version)}")]


def fleet_300(ctx: Context) -> tuple[list[Row], harness.Sample]:
    root = projects.fleet(ctx.tmp / f"fleet-{FLEET}", FLEET)
    out = ctx.tmp / f"helm-out-{FLEET}"
    calls = [(ctx.helm_template(name, path), out / f"{name}.yaml")
             for name, path in projects.helm_values(ctx.tmp / f"fleet-{FLEET}-helm", FLEET)]

    def fresh() -> None:
        shutil.rmtree(root / "rendered", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    ours = lambda: harness.run(ctx.render(root, "fleet"), ctx.env)  # noqa: E731
    ours_sample, helm_sample = harness.interleaved(BIG, ours, lambda: harness.run_all(calls, ctx.helm_env),
                                                   before=fresh)
    noop, written = rendered_again(ours, root, BIG)
    return ([versus(f"(a) {FLEET} releases, full validation (1 call vs {FLEET} helm calls)", ours_sample,
                    helm_sample, 0.1),
             absolute(f"(d) no-op re-render, {FLEET} releases", noop, 0.3, f", {written} files written")],
            helm_sample)


def noop_prod(ctx: Context) -> Row:
    root = projects.example(ctx.tmp / "prod", REPO)
    sample, written = rendered_again(lambda: harness.run(ctx.render(root, "prod"), ctx.env), root, SMALL)
    return absolute("(d) no-op re-render, prod example (2 releases + Argo CD)", sample, 0.1,
                    f", {written} files written")


def per_release(ctx: Context, helm_fleet: harness.Sample) -> list[Row]:
    roots = {n: projects.fleet(ctx.tmp / f"size-{n}", n) for n in SIZES}

    def fresh() -> None:
        for root in roots.values():
            shutil.rmtree(root / "rendered", ignore_errors=True)

    env = {**ctx.env, "LLMPACK_CACHE_DIR": str(ctx.tmp / "size-cache")}   # one schema cache for all sizes
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
                        "<= 1.5x of 100" if n == 1000 else "-", flat <= 1.5 if n == 1000 else None))
    fresh()
    memory = harness.memory(ctx.render(roots[1000], "fleet"), env)
    parts = ", ".join(f"{name.split('-')[0]} {kib / 1024:.0f}" for name, kib in sorted(memory.peaks_kib.items()))
    rows.append(Row("(f) peak RSS, 1000 releases (resident at once; each process's own)",
                    f"{memory.tree_peak_kib / 1024:.0f} MiB ({parts}; ru_maxrss {memory.max_rss_kib / 1024:.0f})",
                    target="<= 150 MiB", met=memory.tree_peak_kib / 1024 <= 150))
    return rows


def verify_validation(ctx: Context, root: Path, env: str, objects: int) -> str:
    """Prove that render runs kubeconform, strict, over every object: a wrapper adds -summary and logs."""
    log = ctx.tmp / f"kubeconform-{env}.log"
    wrapper = ctx.tmp / f"kubeconform-{env}"
    real = ctx.env.get("LLMPACK_KUBECONFORM") or str(TOOLS / "kubeconform-v0.7.0")
    wrapper.write_text(f'#!/bin/bash\nset -o pipefail\necho "$*" >> {log}.args\n'
                       f'"{real}" -summary "$@" | tee -a {log}\n')
    wrapper.chmod(0o755)
    shutil.rmtree(root / "rendered", ignore_errors=True)
    harness.run(ctx.render(root, env), {**ctx.env, "LLMPACK_KUBECONFORM": str(wrapper)})
    summaries = [report["summary"] for report in json_stream(log.read_text())]
    valid, skipped = sum(s["valid"] for s in summaries), sum(s["skipped"] for s in summaries)
    strict = all("-strict" in line.split() for line in (log.with_name(log.name + ".args")).read_text().splitlines())
    if valid != objects or skipped or not strict:
        raise SystemExit(f"render of {env} did not validate every object: kubeconform said valid {valid} of "
                         f"{objects}, skipped {skipped}, strict {strict}")
    return f"{env}: kubeconform -strict validated {valid}/{objects} objects, 0 skipped"


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
    ours = subprocess.run([*ctx.render(root, "one", "--stdout"), ctx.no_crd_check], env=ctx.env, capture_output=True,
                          text=True, check=True).stdout
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
    head = ("figure", "llmpack", "helm (same run)", "ratio", "target", "met")
    cells = [head, *[(r.figure, r.llmpack, r.helm, r.ratio, r.target,
                      "-" if r.met is None else "yes" if r.met else "NO") for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    return [lines[0], "  ".join("-" * w for w in widths), *lines[1:]]


def context(tmp: Path) -> Context:
    env = {**os.environ, "LLMPACK_CRD_DIR": os.environ.get("LLMPACK_CRD_DIR") or str(REPO.parent / "shared" / "crds")}
    env.pop("LLMPACK_CACHE_DIR", None)   # each project keeps its own cache, so "cold" means cold
    if not env.get("LLMPACK_KUBECONFORM") and (TOOLS / "kubeconform-v0.7.0").is_file():
        env["LLMPACK_KUBECONFORM"] = str(TOOLS / "kubeconform-v0.7.0")
    helm, _ = helm_tool.find_or_fetch(TOOLS)
    helm_home = tmp / "helm-home"
    helm_env = {**os.environ, **{f"HELM_{k}_HOME": str(helm_home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}}
    usage = subprocess.run([str(LLMPACK), "render", "--help"], env=env, capture_output=True, text=True).stdout
    return Context(tmp, env, helm, helm_env, NO_CRD_CHECK if NO_CRD_CHECK in usage else NO_CRD_CHECK_BEFORE)


def step(what: str, measure: Callable[..., T], *args: object) -> T:
    print(f"measuring: {what} ...", file=sys.stderr, flush=True)
    return measure(*args)


def main() -> int:
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as tmp:
        ctx = context(Path(tmp))
        print(f"helm {helm_tool.version(ctx.helm)} ({ctx.helm}); kubeconform {ctx.env.get('LLMPACK_KUBECONFORM')}; "
              f"CRDs {ctx.env['LLMPACK_CRD_DIR']}; {os.cpu_count()} cores", flush=True)
        print(f"fields per object, llmpack/helm: {same_objects(ctx)}", flush=True)
        print(verify_validation(ctx, projects.single(ctx.tmp / "verify-one"), "one", 4), flush=True)
        print(verify_validation(ctx, projects.fleet(ctx.tmp / "verify-fleet", FLEET), "fleet", 4 * FLEET), flush=True)
        rows = step("one release", single_release, ctx)
        fleet_rows, helm_fleet = step(f"{FLEET} releases", fleet_300, ctx)
        rows = [fleet_rows[0], *rows, step("prod no-op", noop_prod, ctx), fleet_rows[1],
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
