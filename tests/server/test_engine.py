"""The shared server fixture really runs on each engine."""

from __future__ import annotations

import requests

from ..conftest import RunningServer


def test_server_runs_on_its_engine(server: RunningServer) -> None:
    banner = "\n".join(server.output)
    if server.engine == "postgres":
        assert "Database:       PostgreSQL" in banner
        assert not (server.data_dir / "threadline.db").exists()
    else:
        assert f"Database:       {server.data_dir / 'threadline.db'}" in banner
    assert requests.get(f"{server.http_endpoint}/ready", timeout=5).json() == {"status": "ready"}
