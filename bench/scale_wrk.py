"""Load from ``wrk`` (not Python) for bench/scale.py, CPU accounting, and the raw-Starlette ceiling.

``wrk`` (Debian: ``apt-get install -y wrk``) drives the POSTs with a small Lua script that cycles
through the targets (one per user and thread), so the load generator is C, not the bottleneck.
Server CPU is utime+stime of the server process and all its descendants (``--workers``); PostgreSQL
CPU is that of the backends connected to the bench database (other databases on a shared server
are not counted; the WAL writer and checkpointer are not either).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")

#: A trivial POST -> 201 JSON app: the ceiling of Starlette under uvicorn on this machine.
CEILING_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def create(request):
    await request.body()
    return JSONResponse({"id": "1700000000000"}, status_code=201)


app = Starlette(routes=[Route("/messages", create, methods=["POST"])])
'''

_LUA = '''
local targets = {%s}
local body = '{"content":"hello from the benchmark","senderDisplayName":"bench"}'
local n = 0
request = function()
  n = n + 1
  local t = targets[(n %% #targets) + 1]
  return wrk.format("POST", t[1], {["Authorization"] = "Bearer " .. t[2],
                                   ["Content-Type"] = "application/json"}, body)
end
'''


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def tree_cpu_ms(root: int) -> float:
    """CPU milliseconds (user + system) of a process and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _ticks(pid)
        stack += children.get(pid, [])
    return total * TICK_MS


def machine_ticks() -> tuple[int, int]:
    """Clock ticks of all CPUs so far, (busy, all), from /proc/stat: busy is all but idle, iowait and steal."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


def cpus_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many CPUs were busy on average between two :func:`machine_ticks` readings (every process)."""
    busy, every = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / every if every else 0.0


def pids_cpu_ms(pids: list[int]) -> float:
    """CPU milliseconds of the given processes (0 for any that is gone)."""
    return sum(_ticks(pid) for pid in pids) * TICK_MS


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def _ms(value: str | None) -> float:
    """A wrk duration (``812.00us``, ``1.20ms``, ``2.00s``) in ms; NaN when wrk printed none (no request done)."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value or "")
    if found is None:
        return float("nan")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _first(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text, re.M)
    return found.group(1) if found else None


def run_wrk(base: str, targets: list[tuple[str, str]], connections: int, seconds: float) -> WrkResult:
    """POST to ``targets`` (path, bearer token) with ``wrk -t1 -c<connections>``.

    Args:
        base: ``http://host:port``.
        targets: the request paths and their tokens, cycled through.
        connections: concurrent connections (the C of the case).
        seconds: the duration.
    """
    entries = ", ".join(f'{{"{path}", "{token}"}}' for path, token in targets)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % entries)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script.name, base],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(_first(r"Requests/sec:\s+([\d.]+)", out) or 0)
    requests = int(_first(r"(\d+) requests in", out) or 0)
    # anchored: "Latency ... 70.50%" (the +/- Stdev column) must not read as the 50% percentile
    p50 = _ms(_first(r"^\s+50%\s+(\S+)", out))
    p99 = _ms(_first(r"^\s+99%\s+(\S+)", out))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    failed = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in failed.groups()) if failed else 0)
    return WrkResult(rps, p50, p99, requests, errors)


class Ceiling:
    """The trivial Starlette app under uvicorn (httptools, uvloop), as ``threadline serve`` runs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.folder = tempfile.mkdtemp(prefix="threadline-ceiling-")
        Path(self.folder, "ceiling_app.py").write_text(CEILING_APP)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "ceiling_app:app", "--host", "127.0.0.1", "--port", str(port),
             "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"],
            cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        import socket

        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("the ceiling app did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
