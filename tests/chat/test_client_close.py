"""Closing a ChatClient (or leaving its ``with``/``async with``) closes the thread clients it handed out:
no "Unclosed client session" warnings, however they were used (both engines, via ``server``)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from threadline.chat import ChatClient, CommunicationTokenCredential
from threadline.chat.aio import ChatClient as AsyncChatClient
from threadline.chat.aio import CommunicationTokenCredential as AsyncCredential

from ..conftest import RunningServer
from ..support import new_user


def unclosed(caught: list[warnings.WarningMessage], problems: list[str]) -> list[str]:
    found = [str(w.message) for w in caught if "Unclosed" in str(w.message)]
    return found + [p for p in problems if "Unclosed" in p]


def test_async_chat_client_closes_its_thread_clients(server: RunningServer) -> None:
    token = new_user(server).token
    problems: list[str] = []
    after: list[BaseException] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: problems.append(str(context.get("message"))))
        async with AsyncChatClient(server.http_endpoint, AsyncCredential(token)) as chat:
            thread_id = (await chat.create_chat_thread("closing")).chat_thread.id
            await chat.get_chat_thread_client(thread_id).send_message("dropped at once")
            kept = chat.get_chat_thread_client(thread_id)
            await kept.send_message("kept")
            own = chat.get_chat_thread_client(thread_id, connection_timeout=7)  # a pool of its own
            await own.send_message("own pool")
            async with chat.get_chat_thread_client(thread_id) as inner:  # closing it leaves the pool alone
                await inner.send_message("inner")
            messages = [m.content.message async for m in kept.list_messages() if m.type == "text"]
            assert messages == ["inner", "own pool", "kept", "dropped at once"]
        try:
            await kept.send_message("after close")
        except ValueError as exc:  # the pool is closed with the chat client
            after.append(exc)
        plain = AsyncChatClient(server.http_endpoint, AsyncCredential(token))
        await plain.get_chat_thread_client(thread_id).send_message("close(), not async with")
        await plain.close()
        del kept, own, plain
        gc.collect()
        await asyncio.sleep(0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert unclosed(caught, problems) == []
    assert len(after) == 1 and "closed" in str(after[0])


def test_sync_chat_client_closes_its_thread_clients(server: RunningServer) -> None:
    token = new_user(server).token
    with ChatClient(server.http_endpoint, CommunicationTokenCredential(token)) as chat:
        thread_id = chat.create_chat_thread("closing").chat_thread.id
        chat.get_chat_thread_client(thread_id).send_message("dropped at once")
        kept = chat.get_chat_thread_client(thread_id)
        kept.send_message("kept")
        with chat.get_chat_thread_client(thread_id) as inner:
            inner.send_message("inner")
        assert [m.content.message for m in kept.list_messages() if m.type == "text"] == [
            "inner", "kept", "dropped at once"]
    error: Any = None
    try:
        kept.send_message("after close")
    except ValueError as exc:
        error = exc
    assert error is not None and "closed" in str(error)


@pytest.mark.parametrize("override", [{"api_version": "2024-03-07"}, {"headers": {"x-test": "1"}}])
def test_settings_that_do_not_touch_the_pool_share_it(server: RunningServer, override: dict[str, Any]) -> None:
    token = new_user(server).token
    with ChatClient(server.http_endpoint, CommunicationTokenCredential(token)) as chat:
        thread_id = chat.create_chat_thread("shared").chat_thread.id
        client = chat.get_chat_thread_client(thread_id, **override)
        assert client.send_message("shared pool").id
        assert chat._own_transports == []
