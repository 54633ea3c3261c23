"""Our SDK's image calls (both twins) against a real server on both engines.

``upload_image``/``get_image``/``delete_image`` and ``attachments=`` on send and
update use api-version 2024-06-05-preview for those calls only: every other
call keeps the client's version, which a request hook records.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import PipelineRequest

from threadline.chat import (
    ChatAttachment,
    ChatAttachmentType,
    ChatClient,
    ChatParticipant,
    CommunicationTokenCredential,
    UploadChatImageResult,
)
from threadline.chat.aio import ChatClient as AsyncChatClient
from threadline.chat.aio import CommunicationTokenCredential as AsyncCredential

from ..conftest import RunningServer
from ..support import User, new_user

PREVIEW = "2024-06-05-preview"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVQYV2P4DwABAQEAWk1v8QAAAABJRU5ErkJggg==")
GIF = b"GIF89a" + b"\x02" * 30


class Versions:
    """Records the api-version of every request a client sends (a ``raw_request_hook``)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        version = http.url.split("api-version=", 1)[1].split("&", 1)[0]
        self.seen.append((http.method, http.url.split("?", 1)[0].rsplit("/chat/threads", 1)[1], version))


def sync_client(server: RunningServer, user: User, hook: Versions) -> ChatClient:
    return ChatClient(server.https_endpoint, CommunicationTokenCredential(user.token),
                      connection_verify=server.cert_path, api_version="2024-03-07", raw_request_hook=hook)


def test_images_sync(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    hook = Versions()
    with sync_client(server, alice, hook) as client:
        thread_id = client.create_chat_thread(
            "pictures", thread_participants=[ChatParticipant(identifier=bob.identifier)]
        ).chat_thread.id
        thread = client.get_chat_thread_client(thread_id)
        uploaded = thread.upload_image(PNG, "cat.png")
        assert isinstance(uploaded, UploadChatImageResult)
        assert uploaded.attachment_type == ChatAttachmentType.IMAGE and uploaded.name == "cat.png"
        from_file = thread.upload_image(io.BytesIO(GIF), image_filename="dog.gif")
        sent = thread.send_message("two pets", attachments=[uploaded, ChatAttachment(
            id=from_file.id, attachment_type="image")])
        message = thread.get_message(sent.id)
        assert message.content is not None and message.content.attachments is not None
        assert [(a.id, a.attachment_type, a.name) for a in message.content.attachments] == [
            (uploaded.id, ChatAttachmentType.IMAGE, "cat.png"), (from_file.id, ChatAttachmentType.IMAGE, "dog.gif"),
        ]
        assert message.content.attachments[0].url is not None and "/view/original" in message.content.attachments[0].url
        assert thread.get_image(uploaded.id) == PNG and thread.get_image(from_file.id, "small") == GIF

        thread.update_message(sent.id, attachments=[from_file.id])  # bare ids work too
        edited = thread.get_message(sent.id)
        assert [a.id for a in edited.content.attachments or []] == [from_file.id]  # type: ignore[union-attr]
        with pytest.raises(ResourceNotFoundError):
            thread.get_image(uploaded.id)  # the edit dropped it
        thread.delete_image(from_file.id)
        with pytest.raises(ResourceNotFoundError):
            thread.get_image(from_file.id)
        thread.delete_image(from_file.id)  # quietly again

        with pytest.raises(HttpResponseError) as refused:
            thread.upload_image(b"not an image at all", "x.png")
        assert refused.value.status_code == 415
        with pytest.raises(ValueError, match="image cannot be empty"):
            thread.upload_image(b"", "x.png")
        thread.send_message("plain")
    versions = {(method, path.split("/", 2)[-1].split("/")[0] if "/" in path else path): v
                for method, path, v in hook.seen}
    assert versions[("POST", "images")] == PREVIEW and versions[("GET", "images")] == PREVIEW
    assert versions[("DELETE", "images")] == PREVIEW and versions[("PATCH", "messages")] == PREVIEW
    sends = [v for method, path, v in hook.seen if method == "POST" and path.endswith("/messages")]
    assert sends == [PREVIEW, "2024-03-07"]  # with attachments, then without
    assert ("POST", "", "2024-03-07") in hook.seen  # create_chat_thread kept the client's version


def test_images_aio(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def main() -> None:
        credential = AsyncCredential(alice.token)
        client = AsyncChatClient(server.https_endpoint, credential, connection_verify=server.cert_path)
        async with client:
            created = await client.create_chat_thread(
                "pictures", thread_participants=[ChatParticipant(identifier=bob.identifier)]
            )
            thread = client.get_chat_thread_client(created.chat_thread.id)
            uploaded = await thread.upload_image(PNG, "a.png")
            sent = await thread.send_message("look", attachments=[uploaded])
            got = await thread.get_message(sent.id)
            assert [a.id for a in got.content.attachments or []] == [uploaded.id]  # type: ignore[union-attr]
            assert await thread.get_image(uploaded.id) == PNG
            await thread.update_message(sent.id, attachments=[])
            with pytest.raises(ResourceNotFoundError):
                await thread.get_image(uploaded.id)
            other = await thread.upload_image(GIF)
            assert other.name == "image.gif"
            await thread.delete_image(other.id)
            with pytest.raises(ResourceNotFoundError):
                await thread.get_image(other.id)

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["http", "https"])
def test_the_images_sample_runs(server: RunningServer, mode: str) -> None:
    from .test_samples import run_sample, sample_env

    result = run_sample("chat_images_sample.py", sample_env(server, mode))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^uploaded: 0-tl-d0-[0-9a-f]{32} dot\.png$", result.stdout, re.MULTILINE)
    assert re.search(r"^attachment: 0-tl-d0-[0-9a-f]{32} image dot\.png$", result.stdout, re.MULTILINE)
    assert "same bytes: True" in result.stdout and "after the edit: []" in result.stdout


def test_realtime_events_carry_the_attachments(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def main() -> list[Any]:
        seen: list[Any] = []
        got_edit = asyncio.Event()

        def on_edit(event: Any) -> None:
            seen.append(event)
            got_edit.set()

        async with AsyncChatClient(server.http_endpoint, AsyncCredential(alice.token)) as a, \
                AsyncChatClient(server.http_endpoint, AsyncCredential(bob.token)) as b:
            bob_in = [ChatParticipant(identifier=bob.identifier)]
            created = await a.create_chat_thread("live", thread_participants=bob_in)
            b.on("chatMessageReceived", seen.append)
            b.on("chatMessageEdited", on_edit)
            await b.start_realtime_notifications()
            thread = a.get_chat_thread_client(created.chat_thread.id)
            first, second = await thread.upload_image(PNG, "one.png"), await thread.upload_image(GIF, "two.gif")
            sent = await thread.send_message("pictures", attachments=[first, second])
            await thread.update_message(sent.id, attachments=[second])
            await asyncio.wait_for(got_edit.wait(), 10)
            await b.stop_realtime_notifications()
        return seen

    received, edited = asyncio.run(main())
    assert [(x.id, x.attachment_type, x.name) for x in received.attachments] == [
        (received.attachments[0].id, ChatAttachmentType.IMAGE, "one.png"),
        (received.attachments[1].id, ChatAttachmentType.IMAGE, "two.gif"),
    ]
    assert received.attachments[0].url.startswith("/chat/threads/") and "view/original" in received.attachments[0].url
    assert [x.name for x in edited.attachments] == ["two.gif"]
