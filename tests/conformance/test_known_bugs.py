"""Known upstream bugs (generator.releases.KnownBug) are real, and only where llmpack says.

kserve#6113 (0.20.0): the controller's orphan cleanup deletes the worker Deployment in the same
reconcile that creates it, over and over. The watch on Deployments that ran while the example
bundles were reconciled (reconcile.deploy) counts ADDED and DELETED events per Deployment: a
release llmpack recommends for production (no known bugs) must show no deletion at all, and a
release listed with #6113 must show it, so that the render-time warning stays justified.
The warning itself is checked in the render report of the CLI.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from bundles import CRDS, LLMPACK, PROJECT, environments, versions
from reconcile import Deployed
from report import Report

from generator.releases import RELEASES

WORKER_DELETED = 6113


def counts(deployed: Deployed) -> dict[str, Counter[str]]:
    """Deployment namespace/name -> events by type, for the Deployments of the example bundles."""
    out: dict[str, Counter[str]] = {}
    for event in deployed.deployment_events:
        meta = event.obj["metadata"]
        out.setdefault(f"{meta['namespace']}/{meta['name']}", Counter())[event.type] += 1
    return out


@pytest.mark.parametrize("version", versions(), scope="session")
def test_deployments_are_not_deleted_unless_a_known_bug_says_so(version: str, deployed: Deployed,
                                                                 report: Report) -> None:
    release = RELEASES[version]
    seen = counts(deployed)
    churn = {name: dict(c) for name, c in sorted(seen.items()) if c["DELETED"]}
    summary = ", ".join(f"{name}: ADDED {c['ADDED']}, DELETED {c['DELETED']}" for name, c in sorted(seen.items()))
    report.bugs.append(f"KServe {release.patch}: a {deployed.observed_seconds:.0f} s watch after reconcile "
                       f"(plus the reconcile itself) saw {summary or 'no Deployment event'}")
    known = {bug.issue for bug in release.known_bugs}
    if WORKER_DELETED in known:
        assert any(name.endswith("-predictor-worker") and c["DELETED"] >= 2 for name, c in churn.items()), (
            f"llmpack warns about kserve#{WORKER_DELETED} for {release.patch}, but no worker Deployment was "
            f"deleted repeatedly: {summary}")
    if not known:
        assert not churn, (f"KServe {release.patch} is recommended for production (no known bugs) but the "
                           f"controller deleted Deployments it had created: {churn}")


@pytest.mark.parametrize("version", [v for v, r in RELEASES.items() if r.known_bugs])
def test_known_bugs_are_warned_at_render_time(version: str, tmp_path: Path) -> None:
    """`llmpack render` (to files) names the issue and the way out for every known bug of the release."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT / "overlays", project / "overlays")
    env = environments()[0]
    result = subprocess.run([str(LLMPACK), "-C", str(project), "render", "--env", env, "--crd-dir", str(CRDS),
                             "--set", f'kserve.version="{version}"'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    readme = "\n".join(p.read_text() for p in (project / "rendered" / env).rglob("README.md"))
    for bug in RELEASES[version].known_bugs:
        for where, text in (("render report", result.stdout), ("bundle README", readme)):
            assert f"#{bug.issue}" in text and bug.way_out in text, (
                f"the {where} of KServe {version} does not warn about kserve#{bug.issue} with its way out "
                f"({bug.way_out!r}):\n{text[:2000]}")
