"""The async ``ChatThreadClient``: the ``await`` twin of the sync one."""

from __future__ import annotations

from datetime import datetime
from typing import IO, Any

from azure.core.async_paging import AsyncItemPaged
from azure.core.tracing.decorator import distributed_trace
from azure.core.tracing.decorator_async import distributed_trace_async

from threadline._shared.errors import ChatError
from threadline._shared.identifiers import CommunicationIdentifier
from threadline._shared.pipeline import AsyncLoopbackBearerPolicy
from threadline._shared.runner import AsyncRunner

from .._images import (
    ImageViewType,
    UploadChatImageResult,
    delete_image_call,
    get_image_call,
    thread_path,
    upload_image_call,
)
from .._models import (
    ChatAttachment,
    ChatMessage,
    ChatMessageReadReceipt,
    ChatMessageType,
    ChatParticipant,
    ChatThreadProperties,
    SendChatMessageResult,
)
from .._paging import async_item_paged
from .._pipeline import SDK_MONIKER, client_settings
from .._requests import ChatThreadRequests
from .._retention import ChatRetentionPolicy
from ._credential import CommunicationTokenCredential

__all__ = ["ChatThreadClient"]


class ChatThreadClient:
    """A client for one chat thread, usually from ``ChatClient.get_chat_thread_client``.

    Args:
        endpoint: the service endpoint (``https://...``; ``http://`` only to a loopback host).
        credential: the user's :class:`CommunicationTokenCredential`.
        thread_id: the thread.
        **kwargs: ``api_version`` and azure-core settings, as for ``ChatClient``.

    Raises:
        ValueError: an empty ``thread_id``, no credential, or an invalid endpoint.
    """

    def __init__(
        self, endpoint: str, credential: CommunicationTokenCredential, thread_id: str, **kwargs: Any
    ) -> None:
        if not thread_id:
            raise ValueError("thread_id can not be None or empty")
        settings = client_settings(endpoint, credential, kwargs)
        self._requests = ChatThreadRequests(thread_id, settings.api_version)
        self._runner = AsyncRunner(
            settings.endpoint, AsyncLoopbackBearerPolicy(credential), SDK_MONIKER, **settings.options
        )

    @property
    def thread_id(self) -> str:
        """The thread id."""
        return self._requests.thread_id

    @distributed_trace_async
    async def get_properties(self, **kwargs: Any) -> ChatThreadProperties:
        """Get the thread's properties.

        Returns:
            Its id, topic, creation time and creator.

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.get_properties(kwargs.pop("api_version", None))
        return await self._runner.run(call, **kwargs)

    @distributed_trace_async
    async def update_topic(self, topic: str | None = None, **kwargs: Any) -> None:
        """Change the thread's topic; without a topic nothing changes.

        Args:
            topic: the new topic.

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        await self._runner.run(self._requests.update_topic(topic, kwargs.pop("api_version", None)), **kwargs)

    @distributed_trace_async
    async def update_properties(
        self,
        *,
        topic: str | None = None,
        metadata: dict[str, str | None] | None = None,
        retention_policy: ChatRetentionPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        """Change any of the thread's topic, metadata and retention policy in one call (merge-patch).

        A Threadline addition to 1.3.0 (``updateProperties`` of the JS SDK 1.6.0; api-version
        2025-03-15). What is not given stays as it is. A ``topicUpdated`` message is written
        only when the topic changes.

        Args:
            topic: the new topic.
            metadata: keys to set; a key whose value is None is removed.
            retention_policy: the new retention policy; ``NoneRetentionPolicy()`` stops deletion.

        Raises:
            TypeError: ``retention_policy`` is not a :class:`ChatRetentionPolicy`.
            azure.core.exceptions.HttpResponseError: the service refused (400 for a bad policy).
        """
        call = self._requests.update_properties(topic, metadata, retention_policy, kwargs.pop("api_version", None))
        await self._runner.run(call, **kwargs)

    @distributed_trace_async
    async def send_read_receipt(self, message_id: str, **kwargs: Any) -> None:
        """Mark messages up to ``message_id`` as read by the caller.

        Args:
            message_id: the latest message read.

        Raises:
            ValueError: ``message_id`` is empty.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.send_read_receipt(message_id, kwargs.pop("api_version", None))
        await self._runner.run(call, **kwargs)

    @distributed_trace
    def list_read_receipts(
        self, *, results_per_page: int | None = None, skip: int | None = None, **kwargs: Any
    ) -> AsyncItemPaged[ChatMessageReadReceipt]:
        """List the latest read receipt of each participant.

        Args:
            results_per_page: the page size.
            skip: how many receipts to skip.

        Returns:
            An iterator of :class:`ChatMessageReadReceipt`, with ``by_page()``.

        Raises:
            azure.core.exceptions.HttpResponseError: while iterating.
        """
        pager = self._requests.list_read_receipts(results_per_page, skip, kwargs.pop("api_version", None))
        return async_item_paged(lambda call: self._runner.run(call, **kwargs), pager)

    @distributed_trace_async
    async def send_typing_notification(self, *, sender_display_name: str | None = None, **kwargs: Any) -> None:
        """Tell the other participants that the caller is typing.

        Args:
            sender_display_name: the name shown in push notifications.

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.send_typing_notification(sender_display_name, kwargs.pop("api_version", None))
        await self._runner.run(call, **kwargs)

    @distributed_trace_async
    async def send_message(
        self,
        content: str,
        *,
        chat_message_type: ChatMessageType | str | None = None,
        sender_display_name: str | None = None,
        metadata: dict[str, str] | None = None,
        attachments: list[ChatAttachment | UploadChatImageResult | str] | None = None,
        **kwargs: Any,
    ) -> SendChatMessageResult:
        """Send a message.

        Args:
            content: the message text.
            chat_message_type: ``text`` (default) or ``html``, as enum or string.
            sender_display_name: the name shown in push notifications.
            metadata: message metadata.
            attachments: images uploaded with :meth:`upload_image` (their results, attachments or
                ids); the call then uses api-version 2024-06-05-preview.

        Returns:
            The result, with the new message's ``id``.

        Raises:
            ValueError: empty ``content``, or a type other than text/html.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.send_message(
            content, chat_message_type, sender_display_name, metadata, kwargs.pop("api_version", None),
            attachments,
        )
        return await self._runner.run(call, **kwargs)

    @distributed_trace_async
    async def get_message(self, message_id: str, **kwargs: Any) -> ChatMessage:
        """Get one message.

        Args:
            message_id: the message id.

        Returns:
            The message.

        Raises:
            ValueError: ``message_id`` is empty.
            azure.core.exceptions.HttpResponseError: the service refused (404 for an unknown id).
        """
        call = self._requests.get_message(message_id, kwargs.pop("api_version", None))
        return await self._runner.run(call, **kwargs)

    @distributed_trace
    def list_messages(
        self, *, results_per_page: int | None = None, start_time: datetime | None = None, **kwargs: Any
    ) -> AsyncItemPaged[ChatMessage]:
        """List the thread's messages, newest first, system messages included.

        Args:
            results_per_page: the page size.
            start_time: only messages since then.

        Returns:
            An iterator of :class:`ChatMessage`, with ``by_page()``.

        Raises:
            azure.core.exceptions.HttpResponseError: while iterating.
        """
        pager = self._requests.list_messages(results_per_page, start_time, kwargs.pop("api_version", None))
        return async_item_paged(lambda call: self._runner.run(call, **kwargs), pager)

    @distributed_trace_async
    async def update_message(
        self,
        message_id: str,
        content: str | None = None,
        *,
        metadata: dict[str, str] | None = None,
        attachments: list[ChatAttachment | UploadChatImageResult | str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Edit a message the caller sent.

        Args:
            message_id: the message id.
            content: the new content; unchanged when None.
            metadata: metadata to merge; unchanged when None.
            attachments: the message's images from now on (those left out are deleted);
                unchanged when None. The call then uses api-version 2024-06-05-preview.

        Raises:
            ValueError: ``message_id`` is empty.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.update_message(
            message_id, content, metadata, kwargs.pop("api_version", None), attachments
        )
        await self._runner.run(call, **kwargs)

    @distributed_trace_async
    async def delete_message(self, message_id: str, **kwargs: Any) -> None:
        """Delete a message the caller sent.

        Args:
            message_id: the message id.

        Raises:
            ValueError: ``message_id`` is empty.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.delete_message(message_id, kwargs.pop("api_version", None))
        await self._runner.run(call, **kwargs)

    @distributed_trace
    def list_participants(
        self, *, results_per_page: int | None = None, skip: int | None = None, **kwargs: Any
    ) -> AsyncItemPaged[ChatParticipant]:
        """List the thread's participants in join order.

        Args:
            results_per_page: the page size.
            skip: how many participants to skip.

        Returns:
            An iterator of :class:`ChatParticipant`, with ``by_page()``.

        Raises:
            azure.core.exceptions.HttpResponseError: while iterating.
        """
        pager = self._requests.list_participants(results_per_page, skip, kwargs.pop("api_version", None))
        return async_item_paged(lambda call: self._runner.run(call, **kwargs), pager)

    @distributed_trace_async
    async def add_participants(
        self, thread_participants: list[ChatParticipant], **kwargs: Any
    ) -> list[tuple[ChatParticipant | None, ChatError]]:
        """Add participants; existing ones are left unchanged. An empty list sends nothing.

        Args:
            thread_participants: the participants to add.

        Returns:
            ``(participant, error)`` for each participant that could not be added; empty when all were.

        Raises:
            TypeError: a participant's identifier is not a communication identifier.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.add_participants(thread_participants, kwargs.pop("api_version", None))
        return [] if call is None else await self._runner.run(call, **kwargs)

    @distributed_trace_async
    async def remove_participant(self, identifier: CommunicationIdentifier, **kwargs: Any) -> None:
        """Remove a participant.

        Args:
            identifier: who to remove.

        Raises:
            ValueError: ``identifier`` is None.
            TypeError: ``identifier`` is not a communication identifier.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.remove_participant(identifier, kwargs.pop("api_version", None))
        await self._runner.run(call, **kwargs)

    # -- images (api-version 2024-06-05-preview) ------------------------------------------------

    @distributed_trace_async
    async def upload_image(
        self, image: bytes | IO[bytes], image_filename: str | None = None, **kwargs: Any
    ) -> UploadChatImageResult:
        """Upload an image to the thread, to attach to a message afterwards.

        The server sniffs the type from the bytes (JPEG, PNG, GIF, WebP or HEIC); the file name
        is only kept as the image's name.

        Args:
            image: the image's bytes, or a binary file to read them from.
            image_filename: the file name to keep (sent as the ``image-filename`` header).

        Returns:
            The image's ``id``, ``attachment_type`` and ``name``.

        Raises:
            ValueError: an empty image.
            TypeError: ``image`` is neither bytes nor a binary file.
            azure.core.exceptions.HttpResponseError: the service refused (413 too large, 415 not an image).
        """
        return await self._runner.run(upload_image_call(thread_path(self.thread_id), image, image_filename), **kwargs)

    @distributed_trace_async
    async def get_image(self, image_id: str, image_view_type: ImageViewType = "original", **kwargs: Any) -> bytes:
        """Download an image of the thread (the caller must be allowed to see its message).

        Args:
            image_id: the image id (``ChatAttachment.id``).
            image_view_type: ``original`` or ``small`` (Threadline serves the original for both).

        Returns:
            The image's bytes.

        Raises:
            ValueError: an empty ``image_id`` or an unknown view type.
            azure.core.exceptions.HttpResponseError: the service refused (404 unknown or hidden).
        """
        call = get_image_call(thread_path(self.thread_id), image_id, image_view_type)
        return await self._runner.run(call, **kwargs)

    @distributed_trace_async
    async def delete_image(self, image_id: str, **kwargs: Any) -> None:
        """Delete an image the caller uploaded; deleting it again succeeds.

        Args:
            image_id: the image id.

        Raises:
            ValueError: an empty ``image_id``.
            azure.core.exceptions.HttpResponseError: the service refused (403 not the uploader).
        """
        await self._runner.run(delete_image_call(thread_path(self.thread_id), image_id), **kwargs)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._runner.close()

    async def __aenter__(self) -> ChatThreadClient:
        await self._runner.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self._runner.__aexit__(*args)
