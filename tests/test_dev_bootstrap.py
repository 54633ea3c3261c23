"""``python3 dev.py serve`` on a fresh clone shows its progress while it installs, then serves."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def test_first_run_shows_install_progress(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("dev.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, clone / name)
    shutil.copytree(ROOT / "src", clone / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    python3 = shutil.which("python3") or sys.executable
    done = subprocess.run([python3, str(clone / "dev.py"), "serve", "--help"], cwd=clone, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    steps = [line for line in lines if line.startswith(("dev.py:", "[1/3]", "[2/3]", "[3/3]"))]
    assert steps[0] == (f"dev.py: installing Threadline into {clone / '.venv'} (once; about a minute, later runs "
                        "start at once)")
    assert [s[:5] for s in steps[1:4]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert steps[4].startswith("dev.py: installed in ")
    assert any(line.startswith(("Collecting", "Processing", "Requirement already", "Installing")) for line in lines)
    assert "usage: threadline serve" in done.stdout  # then it became the server (here: its help)
    again = subprocess.run([python3, str(clone / "dev.py"), "serve", "--help"], cwd=clone, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0 and "dev.py: installing" not in again.stdout  # installed once
