"""Docs that run as written: every snippet of README.md and docs/*.md marked ``<!-- runnable -->`` runs
against a live server (both engines), so the docs cannot rot.

The marker is an HTML comment on the line before a fenced ``sh`` or ``python`` block. A snippet runs
as a reader would run it after ``python3 dev.py serve``: from the folder holding ``threadline-data``
(with ``.venv`` beside it), with ``THREADLINE_CONNECTION_STRING`` and
``THREADLINE_HTTP_CONNECTION_STRING`` set as the README says. The one substitution: the docs show
the default ports (8080, 8443), and the test server listens on free ones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, RunningServer, launch

MARKER = "<!-- runnable -->"
_BLOCK = re.compile(r"^<!-- runnable -->\n```(sh|python)\n(.*?)\n```$", re.S | re.M)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def runnable(path: Path) -> list[tuple[str, str]]:
    """The (language, code) of every snippet of a file marked runnable."""
    text = path.read_text()
    found = [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
    assert len(found) == text.count(MARKER), f"{path.name}: a {MARKER} marker is not right before a sh/python block"
    return found


SNIPPETS = [(path, n, lang, code) for path in DOCS for n, (lang, code) in enumerate(runnable(path), 1)]


def test_the_docs_mark_their_examples() -> None:
    by_file = {path.name: sum(1 for p, *_ in SNIPPETS if p == path) for path in DOCS}
    assert by_file["README.md"] >= 3
    assert by_file["sdk.md"] >= 3 and by_file["realtime.md"] >= 1
    assert by_file["operations.md"] >= 1 and by_file["deploy.md"] >= 1


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """A server started as the README says, in a folder of its own with ``.venv`` beside its data, and the
    environment the CLI needs to reach its database."""
    work = tmp_path_factory.mktemp(f"docs-{request.param}")
    (work / ".venv").symlink_to(ROOT / ".venv")
    env = {"THREADLINE_THROTTLE": "off"}
    if request.param == "sqlite":
        server = launch(work / "threadline-data", env=env)
        try:
            yield server, {}
        finally:
            server.stop()
        return
    from .pg import fresh_database, require_postgres

    require_postgres()
    with fresh_database("threadline_docs") as url:
        server = launch(work / "threadline-data", "--database", url, env=env)
        try:
            yield server, {"THREADLINE_DATABASE": url}  # the CLI in the snippets must reach the same database
        finally:
            server.stop()


@pytest.mark.parametrize(("path", "number", "language", "code"), SNIPPETS,
                         ids=[f"{p.name}-{n}" for p, n, _, _ in SNIPPETS])
def test_snippet_runs_as_written(
    live: tuple[RunningServer, dict[str, str]], path: Path, number: int, language: str, code: str
) -> None:
    server, database = live
    http_port = server.http_endpoint.rsplit(":", 1)[1]
    https_port = server.https_endpoint.rsplit(":", 1)[1]
    code = code.replace("127.0.0.1:8080", f"127.0.0.1:{http_port}").replace("127.0.0.1:8443", f"127.0.0.1:{https_port}")
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")}
    env.update({
        "THREADLINE_CONNECTION_STRING": server.connection_string,
        "THREADLINE_HTTP_CONNECTION_STRING": f"endpoint={server.http_endpoint}/;accesskey={server.access_key}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    })
    env.update(database)
    command = ["bash", "-euo", "pipefail", "-c", code] if language == "sh" else [sys.executable, "-c", code]
    done = subprocess.run(command, cwd=server.data_dir.parent, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{path.name} snippet {number} failed:\n{code}\n--- stderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr
