"""Our SDK against a server that throttles as ACS does: 429 with Retry-After, mapped and retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError

from threadline.chat import ChatClient, CommunicationTokenCredential
from threadline.chat.aio import ChatClient as AsyncChatClient
from threadline.chat.aio import CommunicationTokenCredential as AsyncCredential

from ..conftest import RunningServer
from ..support import new_user


def test_429_is_an_acs_error_and_retry_after_is_honoured(start_server: Callable[..., RunningServer]) -> None:
    server = start_server()  # throttling on: ACS allows 10 sends per thread per 10 s
    user = new_user(server)
    chat = ChatClient(server.http_endpoint, CommunicationTokenCredential(user.token), retry_total=0)
    thread = chat.get_chat_thread_client(chat.create_chat_thread("busy").chat_thread.id)
    sent = 0
    with pytest.raises(HttpResponseError) as throttled:
        for _ in range(50):
            thread.send_message("x")
            sent += 1
    assert sent == 10
    error = throttled.value
    assert error.status_code == 429
    assert error.error is not None and error.error.code == "TooManyRequests"
    retry_after = int(error.response.headers["Retry-After"])
    assert 1 <= retry_after <= 10

    async def patient() -> float:
        # The default retry policy waits Retry-After, then the send goes through.
        client = AsyncChatClient(server.http_endpoint, AsyncCredential(user.token))
        async with client, client.get_chat_thread_client(thread.thread_id) as aio_thread:
            began = time.monotonic()
            result = await aio_thread.send_message("after the wait")
            assert result.id
            return time.monotonic() - began

    waited = asyncio.run(patient())
    assert waited >= 0.9
    assert next(iter(thread.list_messages(results_per_page=1))).content.message == "after the wait"
