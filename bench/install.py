"""The llmpack that `make bench` measures: this tree installed as a user installs it (a wheel, no
editable-install finder on the import path), in a virtualenv of its own inside the bench's folder.

`make setup` installs llmpack in .venv in editable mode, whose import hook costs every process
tens of milliseconds that no user pays. The bench builds this tree's wheel, unpacks it into a
fresh virtualenv and reads the dependencies (jinja2, PyYAML, jsonschema, kubernetes-validate)
from .venv's site-packages through a path entry (its .pth files, the editable finder among them,
are not run: only a virtualenv's own site-packages is a site folder).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

SKIPPED = (".git", ".venv", ".tools", ".cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".pytest_cache",
           "__pycache__", "build", "dist", "*.egg-info", "rendered", "tests")


def installed(repo: Path, folder: Path) -> Path:
    """Build and install this tree into `folder`; returns its `llmpack` command. The wheel is built
    from a copy, so the build leaves nothing in the tree (pip fetches the pinned setuptools once)."""
    source, wheels = folder / "source", folder / "wheel"
    shutil.copytree(repo, source, ignore=shutil.ignore_patterns(*SKIPPED))
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
          "--wheel-dir", str(wheels), str(source)])
    venv = folder / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
          "--no-index", "--target", str(site), *map(str, wheels.glob("llmpack-*.whl"))])
    (site / "llmpack-bench-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    command = venv / "bin" / "llmpack"
    command.write_text(f"#!{python}\nimport sys\nfrom generator.cli import main\n\nsys.exit(main())\n")
    command.chmod(0o755)
    where = subprocess.run([str(python), "-c", "import generator, sys; print(generator.__file__); "
                            "print(any('editable' in str(m) for m in sys.modules))"],
                           capture_output=True, text=True, check=True, cwd=folder).stdout.split()
    if not where[0].startswith(str(site)) or where[1] != "False":
        raise SystemExit(f"the bench's llmpack is not the installed wheel: {where}")
    return command


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
