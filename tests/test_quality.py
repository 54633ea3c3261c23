"""The code stays checked: ruff over everything, mypy (strict) over the package."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "bench", "samples", "dev.py"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_packages_are_typed() -> None:
    package = ROOT / "src" / "threadline"
    assert (package / "py.typed").exists()
    for module in ("threadline.chat", "threadline.chat.aio", "threadline.identity", "threadline.identity.aio"):
        imported = __import__(module, fromlist=["__all__"])
        assert imported.__all__, module
        for name in imported.__all__:
            assert getattr(imported, name).__doc__, f"{module}.{name} has no docstring"
