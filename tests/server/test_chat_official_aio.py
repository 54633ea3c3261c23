"""The official aio SDK against a real server over HTTPS."""

from __future__ import annotations

import asyncio

import pytest
from azure.communication.chat import ChatMessageType, ChatParticipant
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from ..conftest import RunningServer
from ..support import new_user, official_aio_chat


def test_aio_flow(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def flow() -> None:
        async with official_aio_chat(server, alice) as chat:
            created = await chat.create_chat_thread(
                "Async", thread_participants=[ChatParticipant(identifier=bob.identifier, display_name="Bob")]
            )
            assert created.errors == []
            thread_id = created.chat_thread.id
            async with chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path) as client:
                assert (await client.get_properties()).topic == "Async"
                sent = [(await client.send_message(f"m{i}", sender_display_name="A")).id for i in range(3)]
                got = await client.get_message(sent[1])
                assert (got.content.message, got.type, got.sequence_id) == ("m1", ChatMessageType.TEXT, "4")
                await client.update_message(sent[0], content="m0!")
                assert (await client.get_message(sent[0])).content.message == "m0!"
                await client.delete_message(sent[2])
                with pytest.raises(ResourceNotFoundError):
                    await client.get_message(sent[2])
                ids = [m.id async for m in client.list_messages(results_per_page=2)]
                assert ids[:3] == [sent[2], sent[1], sent[0]]
                await client.send_read_receipt(sent[1])
                receipts = [r async for r in client.list_read_receipts()]
                assert [(r.sender.properties["id"], r.chat_message_id) for r in receipts] == [(alice.id, sent[1])]
                await client.send_typing_notification(sender_display_name="A")
                people = [p.identifier.properties["id"] async for p in client.list_participants()]
                assert people == [alice.id, bob.id]
                await client.remove_participant(bob.identifier)
                people = [p.identifier.properties["id"] async for p in client.list_participants()]
                assert people == [alice.id]
                await client.update_topic("Renamed")
                assert (await client.get_properties()).topic == "Renamed"
            threads = [t.id async for t in chat.list_chat_threads()]
            assert thread_id in threads
            await chat.delete_chat_thread(thread_id)
        outsider = official_aio_chat(server, bob)
        async with outsider, outsider.get_chat_thread_client(thread_id, connection_verify=server.cert_path) as client:
            with pytest.raises(HttpResponseError) as denied:
                await client.get_properties()
            assert denied.value.status_code == 404

    asyncio.run(flow())


def test_aio_concurrent_sends_get_unique_ordered_sequence_ids(server: RunningServer) -> None:
    alice = new_user(server)

    async def flow() -> list[str]:
        async with official_aio_chat(server, alice) as chat:
            thread_id = (await chat.create_chat_thread("Busy")).chat_thread.id
            async with chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path) as client:
                await asyncio.gather(*(client.send_message(f"n{i}") for i in range(40)))
                return [m.sequence_id async for m in client.list_messages(results_per_page=200)]

    seqs = asyncio.run(flow())
    assert seqs == [str(n) for n in range(42, 0, -1)]
