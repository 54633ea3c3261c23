"""The main chat and identity flows, unchanged, against a server on PostgreSQL with the Redis hub.

The tests are the ones in ``tests/server``, collected again here: this
module's ``server`` fixture replaces the session's SQLite server for them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..conftest import RunningServer

# Collected again with this module's ``server``: every public flow of the service.
from ..server.test_chat_official_aio import test_aio_flow  # noqa: F401
from ..server.test_chat_official_sync import (  # noqa: F401
    test_idempotent_create_and_threads_listing,
    test_messages_paging_with_start_time,
    test_participants_receipts_and_typing,
    test_share_history_time_hides_older_messages,
    test_thread_lifecycle_and_messages,
)
from ..server.test_identity_official import test_create_user_and_tokens, test_revoke_and_delete  # noqa: F401
from .conftest import Cluster, Launcher


@pytest.fixture(scope="module")
def server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One node on PostgreSQL and Redis, with its key in its data folder as the SQLite server has."""
    launcher = Launcher(postgres_url, tmp_path_factory.mktemp("pg-server"))
    made: Cluster = launcher(1)
    node = made.nodes[0]
    (node.data_dir / "access-key").write_text(made.access_key + "\n")
    (node.data_dir / "resource-id").write_text(made.resource_id + "\n")
    yield node
    launcher.stop()


def test_the_server_really_runs_on_postgresql(server: RunningServer) -> None:
    assert any("Database:       PostgreSQL" in line for line in server.output)
