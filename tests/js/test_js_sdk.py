"""The official JavaScript SDKs as a test client: ``node --test`` over tests/js, against a real server.

The suite drives ``@azure/communication-chat`` 1.6.0 (and 1.6.0-beta.7 for the
image calls) and ``@azure/communication-identity`` against the session's
server on each engine, over HTTPS with the server's local CA. The packages come
from the pinned package-lock.json (``npm ci`` when node_modules is missing).
Without Node.js and npm the test is skipped with the reason, unless
``THREADLINE_REQUIRE_SERVICES=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import RunningServer
from ..locks import one_at_a_time

HERE = Path(__file__).resolve().parent
#: Bounds of one run of the suite and of the install.
RUN_SECONDS = 300
INSTALL_SECONDS = 300


def _require_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    reason = "Node.js and npm are needed for the JS SDK suite (tests/js); install them to run it"
    if os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _install(npm: str) -> None:
    """``npm ci`` from the lock file when the pinned packages are not installed yet."""
    modules = HERE / "node_modules"
    with one_at_a_time(HERE):  # the suite's workers share this folder
        if (modules / "@azure" / "communication-chat").is_dir() and (modules / "chat-beta").is_dir():
            return
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                              timeout=INSTALL_SECONDS)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"


def counts(output: str) -> dict[str, int]:
    """The closing counts of node's test runner (``# pass 12`` ...)."""
    return {name: int(value) for name, value in re.findall(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$",
                                                           output, re.MULTILINE)}


def test_official_js_sdk_suite(server: RunningServer) -> None:
    node, npm = _require_node()
    _install(npm)
    env = {
        **os.environ,
        "THREADLINE_ENDPOINT": server.https_endpoint,
        "THREADLINE_CONNECTION_STRING": server.connection_string,
        "NODE_EXTRA_CA_CERTS": server.cert_path,
    }
    files = sorted(str(p.name) for p in HERE.glob("*.test.mjs"))
    done = subprocess.run([node, "--test", "--test-reporter=tap", *files], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=RUN_SECONDS)
    found = counts(done.stdout)
    print(f"JS SDK suite on {server.engine}: {found}")  # shown with -s, and in the CI log
    assert done.returncode == 0 and found.get("fail") == 0, f"{found}\n{done.stdout[-20000:]}\n{done.stderr[-4000:]}"
    assert found.get("pass", 0) >= len(files), found  # every file ran real tests
