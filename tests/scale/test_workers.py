"""``threadline serve --workers N``: several processes on one machine, sharing the sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from ..conftest import launch
from ..support import new_user


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_workers_share_the_port_and_the_database(postgres_url: str, tmp_path: Path) -> None:
    home = tmp_path / "w"
    home.mkdir()
    node = launch(home / "data", "--database", postgres_url, "--workers", "3",
                  env={"THREADLINE_THROTTLE": "off"})
    try:
        workers = _children(node.process.pid)
        assert len(workers) == 3

        alice = new_user(node)
        headers = {"Authorization": f"Bearer {alice.token}"}
        base = f"{node.http_endpoint}/chat/threads"
        created = requests.post(f"{base}?api-version=2024-03-07", json={"topic": "w"}, headers=headers, timeout=10)
        thread_id = created.json()["chatThread"]["id"]

        def send(i: int) -> int:
            with requests.Session() as session:  # a new connection each: spread over the workers
                response = session.post(f"{base}/{thread_id}/messages?api-version=2024-03-07",
                                        json={"content": f"m{i}"}, headers=headers, timeout=10)
            return response.status_code

        before = [_cpu_ticks(pid) for pid in workers]
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(send, range(120))) == [201] * 120
        grew = [_cpu_ticks(pid) - b for pid, b in zip(workers, before, strict=True)]
        assert sum(1 for g in grew if g > 0) >= 2, f"CPU ticks per worker during the sends: {grew}"
        listed = requests.get(f"{base}/{thread_id}/messages?api-version=2024-03-07&maxPageSize=200",
                              headers=headers, timeout=10).json()["value"]
        assert sorted(int(m["sequenceId"]) for m in listed) == list(range(1, 123))
    finally:
        code = node.stop()
    assert code == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _is_zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_workers_refuse_sqlite(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "threadline", "serve", "--data", str(tmp_path / "data"), "--workers", "2",
         "--http-port", "0", "--https-port", "-1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "--workers needs PostgreSQL" in result.stderr


def test_a_dead_worker_is_replaced(postgres_url: str, tmp_path: Path) -> None:
    home = tmp_path / "w"
    home.mkdir()
    node = launch(home / "data", "--database", postgres_url, "--workers", "2")
    try:
        before = _children(node.process.pid)
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        after = before
        while time.monotonic() < deadline:
            after = _children(node.process.pid)
            if len(after) == 2 and before[0] not in after:
                break
            time.sleep(0.1)
        assert len(after) == 2 and before[0] not in after and before[1] in after
        assert requests.get(f"{node.http_endpoint}/health", timeout=5).status_code == 200
    finally:
        node.stop()
