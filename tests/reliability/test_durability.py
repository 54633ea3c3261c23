"""The short durability run: bench/durability.py with 3 SIGKILLs, in CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_acknowledged_messages_survive_sigkill_exactly_once_in_order(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "durability.py"), "--kills", "3", "--clients", "6", "--threads", "3",
         "--json", "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr + (tmp_path / "server.log").read_text()
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert (report["kills"], report["kills_survived"]) == (3, 3)
    assert report["acknowledged"] > 100
    assert report["checked"] == report["acknowledged"]
    assert (report["missing"], report["duplicates"], report["corrupted"], report["out_of_order"]) == (0, 0, 0, 0)
    assert report["failed_attempts"] > 0  # the kills really interrupted sends
