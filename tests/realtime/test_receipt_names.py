"""Read receipt events carry the reader's display name in the thread, where it has one (both engines)."""

from __future__ import annotations

import asyncio

from ..conftest import RunningServer
from ..support import new_user
from .helpers import make_thread, open_stream, thread_client, ws_url


def test_read_receipts_name_the_reader(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)  # bob joins as "user-0"; alice, the creator, has no name
    alice_thread, bob_thread = thread_client(server, alice, thread_id), thread_client(server, bob, thread_id)

    async def main() -> list[dict[str, object]]:
        stream = await open_stream(ws_url(server), alice.token)
        sent = await asyncio.to_thread(alice_thread.send_message, "read me")
        await asyncio.to_thread(bob_thread.send_read_receipt, sent.id)
        await asyncio.to_thread(alice_thread.send_read_receipt, sent.id)
        frames = await stream.wait_type("readReceiptReceived", count=2)
        await stream.close()
        return [f["data"] for f in frames]

    receipts = asyncio.run(main())
    assert [r["senderDisplayName"] for r in receipts] == ["user-0", ""]  # bob's receipt, then alice's
