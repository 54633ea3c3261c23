"""Installable as a package: ``python -m build`` makes a wheel holding every package file (migrations,
py.typed, any static assets), and that wheel, installed into a fresh venv, serves and answers a client
(both engines), with no help from the source tree."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, launch
from .pg import database_flags

PACKAGE = ROOT / "src" / "threadline"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (built,) = out.glob("threadline-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no access to the source tree or the dev venv) with the wheel installed; its bin folder."""
    home = tmp_path_factory.mktemp("fresh") / "venv"
    venv.EnvBuilder(with_pip=True).create(home)
    done = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return home / "bin"


def test_the_wheel_holds_every_package_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"threadline/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert expected - names == set()
    assert "threadline/store/migrations/sqlite/0001_initial.sql" in names
    assert "threadline/store/migrations/postgres/0001_initial.sql" in names


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    with database_flags(request.param, "threadline_wheel") as flags:
        yield flags


SMOKE = """
import json, sys
import threadline
from threadline.chat import ChatClient, CommunicationTokenCredential
from threadline.identity import CommunicationIdentityClient

identity = CommunicationIdentityClient.from_connection_string(sys.argv[1])
user, token = identity.create_user_and_token(["chat"])
with ChatClient(sys.argv[2], CommunicationTokenCredential(token.token)) as chat:
    thread = chat.create_chat_thread("from the wheel").chat_thread
    chat.get_chat_thread_client(thread.id).send_message("installed")
    texts = [m.content.message for m in chat.get_chat_thread_client(thread.id).list_messages() if m.type == "text"]
print(json.dumps({"module": threadline.__file__, "texts": texts}))
"""


def test_the_installed_wheel_serves(installed: Path, tmp_path: Path, database: list[str]) -> None:
    work = tmp_path / "elsewhere"  # not the source tree: nothing of src/ can be imported from here
    work.mkdir()
    server = launch(work / "data", *database, command=[
        str(installed / "threadline"), "serve", "--data", str(work / "data"), "--http-port", "0",
        "--https-port", "0", *database])
    try:
        conn = f"endpoint={server.http_endpoint}/;accesskey={server.access_key}"
        done = subprocess.run([str(installed / "python"), "-c", SMOKE, conn, server.http_endpoint], cwd=work,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["module"].startswith(str(installed.parent))
        assert result["texts"] == ["installed"]
        seeded = subprocess.run([str(installed / "threadline"), "seed", "--json", "--data", str(work / "data"),
                                 *database], cwd=work, capture_output=True, text=True, timeout=120)
        assert seeded.returncode == 0, seeded.stderr
        assert json.loads(seeded.stdout)["endpoints"]["http"] == server.http_endpoint
    finally:
        server.stop()
