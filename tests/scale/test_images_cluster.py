"""Images over several nodes on one PostgreSQL database: every node serves every image."""

from __future__ import annotations

import asyncio
import base64

import asyncpg

from threadline.chat import ChatClient, ChatParticipant, CommunicationTokenCredential
from threadline.store.records import blob_key

from ..conftest import RunningServer
from ..support import User
from .conftest import Cluster
from .test_cluster import new_user

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQYV2P4DwABAQEAWk1v8QAAAABJRU5ErkJggg==")


def ours(node: RunningServer, user: User) -> ChatClient:
    return ChatClient(node.https_endpoint, CommunicationTokenCredential(user.token), connection_verify=node.cert_path)


def test_an_image_uploaded_on_one_node_is_served_and_deleted_on_the_others(trio: Cluster) -> None:
    a, b, c = trio.nodes
    alice, bob = new_user(trio, a), new_user(trio, b)
    thread_id = ours(a, alice).create_chat_thread(
        "nodes", thread_participants=[ChatParticipant(identifier=bob.identifier)]
    ).chat_thread.id
    on_a = ours(a, alice).get_chat_thread_client(thread_id)
    uploaded = on_a.upload_image(PNG, "n.png")
    sent = on_a.send_message("from node a", attachments=[uploaded])

    on_b = ours(b, bob).get_chat_thread_client(thread_id)
    (attachment,) = on_b.get_message(sent.id).content.attachments  # type: ignore[union-attr]
    assert attachment.id == uploaded.id and on_b.get_image(uploaded.id) == PNG
    assert ours(c, bob).get_chat_thread_client(thread_id).get_image(uploaded.id, "small") == PNG

    async def stored() -> tuple[int, int]:
        conn = await asyncpg.connect(trio.database)
        try:
            rows = await conn.fetchval("SELECT count(*) FROM images WHERE thread_id = $1", thread_id)
            blobs = await conn.fetchval("SELECT count(*) FROM image_blobs WHERE key = $1",
                                        blob_key(thread_id, uploaded.id))
            return int(rows), int(blobs)
        finally:
            await conn.close()

    assert asyncio.run(stored()) == (1, 1)
    ours(c, alice).delete_chat_thread(thread_id)  # deleted through a third node: gone from the database
    assert asyncio.run(stored()) == (0, 0)
    for node in (a, b, c):
        assert not (node.data_dir / "images").exists()  # nothing was kept on a node's own disk
