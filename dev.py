#!/usr/bin/env python3
"""Bootstrap for a fresh machine that has only Python 3.11+.

    python3 dev.py serve [threadline serve flags]   run Threadline on embedded SQLite
    python3 dev.py test [pytest args]               install what the tests need, run them all

Both create ``.venv`` beside this file on first use and install the project
into it (again whenever ``pyproject.toml`` changes).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure(extra: str) -> None:
    """Create the venv and install the project with an extra, when not done for this pyproject."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under whatever python3 the machine has
        sys.exit("Threadline needs Python 3.11 or newer.")
    stamp = VENV / f".installed-{extra or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    # The test install is a superset of the base one, so either stamp serves 'serve'.
    usable = [stamp] if extra else [stamp, VENV / ".installed-test"]
    if PYTHON.exists() and any(s.exists() and s.read_text() == digest for s in usable):
        return
    what = "Threadline and what the tests need" if extra else "Threadline"
    print(f"dev.py: installing {what} into {VENV} (once; about a minute, later runs start at once)", flush=True)
    started = time.monotonic()
    if not PYTHON.exists():
        print("[1/3] creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f"{ROOT}[{extra}]" if extra else str(ROOT)
    print("[2/3] updating pip ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    print(f"[3/3] installing {target} and its dependencies (pip's progress follows) ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--progress-bar", "on", "-e", target], check=True)
    stamp.write_text(digest)
    print(f"dev.py: installed in {time.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "test"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        ensure("")
        args = [str(PYTHON), "-m", "threadline", "serve", *rest]
        if os.name == "posix":  # become the server, so signals reach it directly
            os.execv(args[0], args)
        return subprocess.call(args)
    ensure("test")
    return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
