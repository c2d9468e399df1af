"""What llmpack writes, in a hostile place: each refusal is a located error with the previous bundle
intact and nothing left behind (issue #13: rendered being a file, a read-only or immutable rendered/,
a bind mount (EXDEV), a full disk (ENOSPC), a file or link at rendered/ENV moved into the staging area).

The mechanisms are real: `chattr +i` for immutable folders, a read-only bind mount, a tmpfs of a
few hundred KiB filled up for ENOSPC, a bind mount for EXDEV and a mount point at rendered/ENV.
Where this machine cannot (not root, no mount or chattr), the case is skipped and says why. Two
renders at once are run for real too (20 pairs).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from catalogue import REPO, Case

from generator.errors import FileError
from generator.pipeline import build, render_env
from generator.project import Extras, Project

Tree = dict[str, bytes]
STAGING = Path(".cache") / "llmpack" / "staging"


def snapshot(folder: Path) -> Tree:
    """Every entry below `folder` but folders: a file's bytes, anything else `<other>`."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() and not p.is_symlink() else b"<other>"
            for p in sorted(folder.rglob("*")) if p.is_symlink() or not p.is_dir()} if folder.exists() else {}


def files_in(folder: Path) -> list[str]:
    """Every file below `folder` (empty folders are no litter)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()) \
        if folder.is_dir() else []


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def _works(*command: str) -> bool:
    try:
        return subprocess.run(command, capture_output=True, check=False).returncode == 0
    except OSError:
        return False


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory: pytest.TempPathFactory) -> bool:
    probe = tmp_path_factory.mktemp("mount-probe")
    if os.geteuid() != 0 or not _works("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)):
        return False
    sh("umount", str(probe))
    return True


@pytest.fixture(scope="module")
def can_chattr(tmp_path_factory: pytest.TempPathFactory) -> bool:
    probe = tmp_path_factory.mktemp("chattr-probe") / "f"
    probe.write_text("")
    if os.geteuid() != 0 or not _works("chattr", "+i", str(probe)):
        return False
    sh("chattr", "-i", str(probe))
    return True


def project_at(root: Path, size: str = "50Gi") -> Project:
    (root / "overlays" / "test").mkdir(parents=True, exist_ok=True)
    set_size(root, size)
    return Project(root, REPO / "charts/kserve-multinode", REPO / "schemas/values.schema.json")


def set_size(root: Path, size: str) -> None:
    (root / "overlays" / "test" / "values.yaml").write_text(f"pvc: {{size: {size}}}\n")


@dataclass(frozen=True)
class InTheWay:
    id: str
    make: Callable[[Path], None]     # given rendered/
    where: str
    part: str


def _file(path: Path) -> None:
    path.write_text("mine\n")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def inside(make: Callable[[Path], None]) -> Callable[[Path], None]:
    """rendered/ a folder, and `make` run on rendered/test."""
    def setup(out: Path) -> None:
        out.mkdir()
        make(out / "test")
    return setup


def link(to: str, *, make_target: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        if make_target:
            make_target(path.with_name(to))
        path.symlink_to(to)
    return make


IN_THE_WAY = [
    InTheWay("rendered-a-file", _file, "rendered: ", "is a file, not a folder"),
    InTheWay("rendered-a-fifo", _fifo, "rendered: ", "is a FIFO, not a folder"),
    InTheWay("rendered-a-link-loop", _loop, "rendered: ", "is a link loop"),
    InTheWay("target-a-file", inside(_file), "rendered/test: ", "is a file, not a folder llmpack wrote"),
    InTheWay("target-a-fifo", inside(_fifo), "rendered/test: ", "is a FIFO"),
    InTheWay("target-a-link-to-a-folder", inside(link("elsewhere", make_target=Path.mkdir)), "rendered/test: ",
             "is a symbolic link"),
    InTheWay("target-a-link-to-a-file", inside(link("mine", make_target=_file)), "rendered/test: ",
             "is a symbolic link"),
    InTheWay("target-a-dangling-link", inside(link("gone")), "rendered/test: ", "is a symbolic link"),
    InTheWay("target-a-link-loop", inside(_loop), "rendered/test: ", "is a symbolic link"),
]

CASES = [Case("writes", c.id) for c in IN_THE_WAY] + [Case("writes", name) for name in (
    "immutable-rendered", "immutable-target", "immutable-rendered-first-render", "immutable-noop",
    "read-only-bind-mount", "full-disk", "full-disk-first-render", "full-rendered-only", "bind-mount-exdev",
    "target-a-mount-point", "cache-a-file", "staging-a-file", "fifo-inside-target", "old-staging-of-a-dead-render",
    "concurrent-pairs")]


@pytest.mark.parametrize("case", IN_THE_WAY, ids=[c.id for c in IN_THE_WAY])
def test_what_is_in_the_way_is_refused_and_left_alone(tmp_path: Path, case: InTheWay) -> None:
    project = project_at(tmp_path)
    out = tmp_path / "rendered"
    case.make(out)
    before = snapshot(tmp_path / "rendered") if out.is_dir() and not out.is_symlink() else {}
    with pytest.raises(FileError) as caught:
        render_env(project, "test")
    assert str(caught.value).startswith(case.where) and case.part in str(caught.value), str(caught.value)
    if out.is_dir() and not out.is_symlink():
        assert snapshot(out) == before
    assert files_in(tmp_path / ".cache") == [], "nothing may be moved into the staging area"


@pytest.fixture
def immutable(can_chattr: bool) -> Iterator[Callable[[Path], None]]:
    if not can_chattr:
        pytest.skip("chattr +i needs root and a file system with attributes (ext4, xfs, btrfs)")
    done: list[Path] = []

    def freeze(path: Path) -> None:
        sh("chattr", "+i", str(path))
        done.append(path)

    yield freeze
    for path in reversed(done):
        sh("chattr", "-i", str(path))


@pytest.mark.parametrize("which", ["rendered", "target"])
def test_an_immutable_folder_is_a_located_error_and_the_bundle_stays(
        tmp_path: Path, immutable: Callable[[Path], None], which: str) -> None:
    project = project_at(tmp_path)
    render_env(project, "test")
    out = tmp_path / "rendered"
    before = snapshot(out)
    immutable(out if which == "rendered" else out / "test")
    set_size(tmp_path, "60Gi")
    with pytest.raises(FileError) as caught:
        render_env(project, "test")
    assert str(caught.value).startswith("rendered/test: cannot swap the new files in: the operation is not "
                                        "permitted (EPERM)"), str(caught.value)
    assert "nothing was written: rendered/test is as it was" in str(caught.value)
    assert caught.value.code == errno.EPERM and snapshot(out) == before
    assert files_in(tmp_path / STAGING) == []


def test_an_immutable_rendered_before_the_first_render(tmp_path: Path, immutable: Callable[[Path], None]) -> None:
    project = project_at(tmp_path)
    (tmp_path / "rendered").mkdir()
    immutable(tmp_path / "rendered")
    with pytest.raises(FileError, match=r"^rendered/test: cannot move the new files into place: the operation is "
                                        r"not permitted \(EPERM\)"):
        render_env(project, "test")
    assert files_in(tmp_path / "rendered") == [] and files_in(tmp_path / STAGING) == []


def test_a_render_that_changes_nothing_does_not_write_into_an_immutable_folder(
        tmp_path: Path, immutable: Callable[[Path], None]) -> None:
    project = project_at(tmp_path)
    render_env(project, "test")
    immutable(tmp_path / "rendered")
    assert render_env(project, "test").changed is False


@pytest.fixture
def mounts(can_mount: bool) -> Iterator[Callable[..., None]]:
    if not can_mount:
        pytest.skip("mount needs root with CAP_SYS_ADMIN (not in this container)")
    done: list[Path] = []

    def mount(*arguments: str) -> None:
        sh("mount", *arguments)
        if not any(a.startswith("remount") for a in arguments):
            done.append(Path(arguments[-1]))

    yield mount
    for point in reversed(done):
        sh("umount", str(point))


def test_a_read_only_bind_mount_is_a_located_error(tmp_path: Path, mounts: Callable[..., None]) -> None:
    project = project_at(tmp_path)
    render_env(project, "test")
    out = tmp_path / "rendered"
    before = snapshot(out)
    mounts("--bind", str(out), str(out))
    mounts("-o", "remount,bind,ro", str(out))
    set_size(tmp_path, "60Gi")
    with pytest.raises(FileError) as caught:
        render_env(project, "test")
    assert "the file system is read-only (EROFS)" in str(caught.value) and str(caught.value).startswith("rendered")
    assert snapshot(out) == before and files_in(tmp_path / STAGING) == []


def fill(disk: Path, leave: int) -> None:
    """Fill a file system up, then free `leave` bytes."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave))


@pytest.mark.parametrize("first", [False, True], ids=["over-a-bundle", "first-render"])
def test_a_full_disk_is_a_located_error_and_leaves_nothing(tmp_path: Path, mounts: Callable[..., None],
                                                           *, first: bool) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounts("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk))
    project = project_at(disk)
    if not first:
        render_env(project, "test")
    before = snapshot(disk / "rendered")
    set_size(disk, "60Gi")
    fill(disk, 8192)
    with pytest.raises(FileError) as caught:
        render_env(project, "test")
    assert "no space left on the device (ENOSPC); free some space and run again; nothing was written" \
        in str(caught.value), str(caught.value)
    assert snapshot(disk / "rendered") == before and files_in(disk / STAGING) == []
    (disk / "filler").unlink()
    assert render_env(project, "test").changed, "with space again, the render goes through"


def test_a_full_rendered_mount_stages_beside_and_cleans_up(tmp_path: Path, mounts: Callable[..., None]) -> None:
    project = project_at(tmp_path)
    out = tmp_path / "rendered"
    out.mkdir()
    mounts("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(out))
    render_env(project, "test")
    set_size(tmp_path, "60Gi")
    fill(out, 4096)
    before = snapshot(out)          # the bundle and the test's filler
    with pytest.raises(FileError, match="ENOSPC"):
        render_env(project, "test")
    assert snapshot(out) == before and files_in(tmp_path / STAGING) == []


def test_a_bind_mount_between_staging_and_rendered_falls_back_to_staging_beside(
        tmp_path: Path, mounts: Callable[..., None]) -> None:
    """A bind mount keeps st_dev, but rename across it is EXDEV: the bundle is staged again inside rendered/."""
    project = project_at(tmp_path)
    real, out = tmp_path / "real", tmp_path / "rendered"
    real.mkdir()
    out.mkdir()
    mounts("--bind", str(real), str(out))
    render_env(project, "test")
    set_size(tmp_path, "60Gi")
    assert render_env(project, "test").changed
    assert sorted(p.name for p in out.iterdir()) == ["test"]
    assert snapshot(out / "test") == {k: v.encode() for k, v in build(project, "test").texts().items()}
    assert files_in(tmp_path / STAGING) == []


def test_a_mount_point_at_rendered_env_is_a_located_error(tmp_path: Path, mounts: Callable[..., None]) -> None:
    project = project_at(tmp_path)
    render_env(project, "test")
    out = tmp_path / "rendered"
    mounts("--bind", str(out / "test"), str(out / "test"))
    before = snapshot(out)
    set_size(tmp_path, "60Gi")
    with pytest.raises(FileError) as caught:
        render_env(project, "test")
    assert str(caught.value).startswith("rendered/test: ") and "is as it was" in str(caught.value)
    assert snapshot(out) == before and files_in(tmp_path / STAGING) == []


@pytest.mark.parametrize("what", ["cache-a-file", "staging-a-file"])
def test_a_staging_area_that_cannot_be_made_falls_back_to_rendered(tmp_path: Path, what: str) -> None:
    project = project_at(tmp_path)
    blocker = tmp_path / ".cache" if what == "cache-a-file" else tmp_path / ".cache" / "llmpack" / "staging"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder\n")
    assert render_env(project, "test").changed
    assert sorted(p.name for p in (tmp_path / "rendered").iterdir()) == ["test"]
    assert blocker.read_text() == "not a folder\n"


def test_a_fifo_inside_the_bundle_is_never_opened(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    render_env(project, "test")
    os.mkfifo(tmp_path / "rendered" / "test" / "kustomization.yaml.fifo")
    assert render_env(project, "test").changed       # it differs: replaced, not read
    assert not (tmp_path / "rendered" / "test" / "kustomization.yaml.fifo").exists()


def test_the_old_half_of_a_killed_two_rename_swap_is_removed(tmp_path: Path) -> None:
    project = project_at(tmp_path)
    staging = tmp_path / ".cache" / "llmpack" / "staging"
    dead = staging / ".llmpack-test-999999999-old"
    (dead / "a").mkdir(parents=True)
    render_env(project, "test")
    assert files_in(staging) == [] and not dead.exists()


PAIRS = 20


def test_two_renders_at_once_leave_one_whole_bundle(tmp_path: Path) -> None:
    """20 times, two processes render the same environment with other values at the same moment: both
    succeed, and rendered/test is exactly one of the two bundles, with nothing else anywhere."""
    project = project_at(tmp_path)
    roots = {}
    for size in ("50Gi", "60Gi"):
        other = tmp_path / f"values-{size}.yaml"
        other.write_text(f"pvc: {{size: {size}}}\n")
        roots[size] = other
    bundles = [{k: v.encode() for k, v in build(project, "test", _extras(roots[s])).texts().items()} for s in roots]
    command = [sys.executable, "-m", "generator", "-C", str(tmp_path), "render", "--env", "test", "-q",
               "--no-crd-check"]
    env = {"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]}
    for index in range(PAIRS):
        if index % 2:
            subprocess.run(["rm", "-rf", str(tmp_path / "rendered")], check=True)   # half of them: the first render
        runs = [subprocess.Popen([*command, "-f", str(roots[s])], env=env, stderr=subprocess.PIPE, text=True)
                for s in roots]
        errors = [run.communicate(timeout=120)[1] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], errors
        assert snapshot(tmp_path / "rendered" / "test") in bundles
        assert sorted(p.name for p in (tmp_path / "rendered").iterdir()) == ["test"]
        assert files_in(tmp_path / STAGING) == []


def _extras(path: Path) -> Extras:
    return Extras((path,))
