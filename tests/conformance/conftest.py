"""The real control plane for the conformance tests: one etcd and kube-apiserver for the session,
one KServe manager at a time (tests are grouped by release, the previous manager is stopped
before the next starts).

Run with `make conformance`, which builds the binaries first (tools/control-plane/build).
Tests take the release as a session-scoped parameter `version` ("0.20"); the fixtures
below turn it into a running manager and, once per release, the applied example bundles.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bundles import Renders, gitops_crds
from controlplane import Cluster, NotBuilt, Supervisor
from install import KServe, crds_from, install_crds, install_kserve, uninstall_kserve
from kube import Kube
from manager import KServeFiles
from reconcile import Deployed, deploy
from report import Report, Say

from generator.releases import RELEASES

REPORT = Report(Path(__file__).resolve().parents[2] / ".cache" / "conformance" / "report.md")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag the matrix tests with their cell, so that the report has it even when a fixture skips."""
    for item in items:
        name = getattr(item, "originalname", "")
        params = getattr(item, "callspec", None)
        if name in ("test_kserve_bundle", "test_raw_bundle") and params is not None:
            target = name.removeprefix("test_").removesuffix("_bundle")
            item.user_properties.append(("matrix-cell", (params.params["env"], target, params.params["version"])))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    REPORT.outcome(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    written = REPORT.write()
    terminalreporter.write_sep("=", "llmpack vs the real KServe controller")
    terminalreporter.write_line(written.read_text())
    terminalreporter.write_line(f"(also in {written})")


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


@pytest.fixture(scope="session")
def say(request: pytest.FixtureRequest) -> Say:
    """Progress lines on the terminal, past pytest's output capture (each release takes a while)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    began = time.monotonic()

    def line(message: str) -> None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(f"\n[conformance {time.monotonic() - began:5.0f}s] {message}", file=sys.stderr, flush=True)
    return line


@pytest.fixture(scope="session")
def renders(request: pytest.FixtureRequest) -> Iterator[Renders]:
    """Every example environment x target of the releases the selected tests use, rendered by the
    CLI in the background, in the order the tests will need them."""
    wanted = [item.callspec.params["version"] for item in request.session.items
              if hasattr(item, "callspec") and "version" in item.callspec.params]
    pool = Renders()
    pool.start(list(dict.fromkeys(wanted)))
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, say: Say) -> Iterator[tuple[Cluster, Kube]]:
    supervisor = Supervisor()
    try:
        control_plane = Cluster(tmp_path_factory.mktemp("control-plane"), supervisor)
        try:
            kube = control_plane.start()
        except NotBuilt as err:
            pytest.fail(str(err))
        say(f"etcd and kube-apiserver ready at {control_plane.server} (logs: {control_plane.logs})")
        crds = gitops_crds()
        install_crds(kube, [*crds_from(crds / "argocd"), *crds_from(crds / "flux")])
        say(f"Argo CD and Flux CRDs installed from {crds}")
        yield control_plane, kube
    finally:
        supervisor.stop_all()
        supervisor.restore_signals()
        assert not supervisor.running(), f"processes still running after teardown: {supervisor.running()}"


@pytest.fixture(scope="session")
def kserve(version: str, cluster: tuple[Cluster, Kube], say: Say) -> Iterator[KServe]:
    control_plane, kube = cluster
    release = RELEASES[version]
    try:
        files = KServeFiles.of(release.patch)
    except NotBuilt as err:
        say(f"KServe {release.patch}: skipped: {err}")
        pytest.skip(str(err))
    began = time.monotonic()
    manager = install_kserve(kube, control_plane, files)
    say(f"KServe {release.patch}: CRDs, ConfigMap and webhooks installed, manager ready in "
        f"{time.monotonic() - began:.0f} s (log: {manager.log})")
    try:
        yield KServe(release, manager, kube, control_plane)
    finally:
        began = time.monotonic()
        try:
            uninstall_kserve(kube, manager)
        finally:
            manager.stop()   # never two managers at once, even when the cleanup failed
        say(f"KServe {release.patch}: manager stopped, its objects removed in {time.monotonic() - began:.0f} s")


@pytest.fixture(scope="session")
def deployed(kserve: KServe, renders: Renders, say: Say) -> Deployed:
    """The example bundles of this release, applied and reconciled (see reconcile.deploy)."""
    result = deploy(kserve.kube, kserve.release, renders)
    steps = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in result.seconds.items())
    say(f"KServe {kserve.release.patch}: example bundles applied and reconciled ({steps}, "
        f"then watched {result.observed_seconds:.0f} s)")
    return result
