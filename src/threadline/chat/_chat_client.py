"""The sync ``ChatClient``: create, list and delete threads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.core.paging import ItemPaged
from azure.core.pipeline.transport import RequestsTransport
from azure.core.tracing.decorator import distributed_trace

from threadline._shared.pipeline import LoopbackBearerPolicy
from threadline._shared.runner import SyncRunner
from threadline._shared.transport import BorrowedTransport, needs_own_transport

from ._chat_thread_client import ChatThreadClient
from ._credential import CommunicationTokenCredential
from ._models import ChatParticipant, ChatThreadItem, CreateChatThreadResult
from ._paging import item_paged
from ._pipeline import SDK_MONIKER, client_settings
from ._realtime_sync import SyncRealtimeMixin
from ._requests import ChatRequests
from ._retention import ChatRetentionPolicy

__all__ = ["ChatClient"]


class ChatClient(SyncRealtimeMixin):
    """A client for the chat threads of one user.

    Real-time events: :meth:`start_realtime_notifications`, :meth:`on`,
    :meth:`off`, :meth:`events` and :meth:`stop_realtime_notifications`
    (see ``docs/realtime.md``).

    Args:
        endpoint: the service endpoint (``https://...``; ``http://`` only to a loopback host).
        credential: the user's :class:`CommunicationTokenCredential`.
        **kwargs: ``api_version`` (default ``2025-03-15``) and any azure-core
            setting (``connection_verify``, ``transport``, ``retry_total``,
            ``per_call_policies``, ``logging_enable``...). Thread clients from
            :meth:`get_chat_thread_client` inherit them.

    Raises:
        ValueError: no credential, or an invalid endpoint.
    """

    def __init__(self, endpoint: str, credential: CommunicationTokenCredential, **kwargs: Any) -> None:
        self._settings = client_settings(endpoint, credential, kwargs)
        self._endpoint = self._settings.endpoint
        self._credential = credential
        self._requests = ChatRequests(self._settings.api_version)
        options = dict(self._settings.options)
        # One transport (connection pool) for this client and the thread clients it hands out.
        self._transport = options["transport"] = options.get("transport") or RequestsTransport(**options)
        self._own_transports: list[Any] = []
        self._runner = SyncRunner(self._endpoint, LoopbackBearerPolicy(credential), SDK_MONIKER, **options)

    def get_chat_thread_client(self, thread_id: str, **kwargs: Any) -> ChatThreadClient:
        """Return a client for one thread, sharing this client's settings.

        Args:
            thread_id: the thread id.
            **kwargs: settings overriding the inherited ones.

        Returns:
            The thread client. It sends through this client's connection pool, so closing this
            client (or leaving its ``with``) closes it too; one asked for other connection settings
            has a pool of its own, which this client also closes.

        Raises:
            ValueError: ``thread_id`` is empty.
        """
        if not thread_id:
            raise ValueError("thread_id cannot be None.")
        settings = self._settings.inherited(kwargs)
        if needs_own_transport(self._settings.options, kwargs):
            if settings.get("transport") is self._transport:
                del settings["transport"]
            settings["transport"] = transport = settings.get("transport") or RequestsTransport(**settings)
            self._own_transports.append(transport)  # closed with this client
        else:
            settings["transport"] = BorrowedTransport(self._transport)
        return ChatThreadClient(self._endpoint, self._credential, thread_id, **settings)

    @distributed_trace
    def create_chat_thread(
        self,
        topic: str,
        *,
        thread_participants: list[ChatParticipant] | None = None,
        idempotency_token: str | None = None,
        metadata: dict[str, str] | None = None,
        retention_policy: ChatRetentionPolicy | None = None,
        **kwargs: Any,
    ) -> CreateChatThreadResult:
        """Create a thread; the caller becomes a participant.

        Args:
            topic: the thread topic.
            thread_participants: other participants to add.
            idempotency_token: sent as ``repeatability-request-id``; repeating a
                token returns the thread created the first time. A fresh uuid4 when omitted.
            metadata: the thread's metadata (api-version 2025-03-15; a Threadline addition).
            retention_policy: when the service deletes the thread, e.g.
                ``ThreadCreationDateRetentionPolicy(delete_thread_after_days=30)``
                (api-version 2025-03-15; a Threadline addition).
            **kwargs: per-call pipeline options (``api_version``, ``headers``, ``timeout``...).

        Returns:
            The thread and the participants that could not be added (an empty list when none failed).

        Raises:
            ValueError: ``topic`` is empty.
            TypeError: a participant's identifier is not a communication identifier, or
                ``retention_policy`` is not a :class:`ChatRetentionPolicy`.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.create_chat_thread(
            topic, thread_participants, idempotency_token, kwargs.pop("api_version", None),
            metadata=metadata, retention_policy=retention_policy,
        )
        return self._runner.run(call, **kwargs)

    @distributed_trace
    def list_chat_threads(
        self, *, results_per_page: int | None = None, start_time: datetime | None = None, **kwargs: Any
    ) -> ItemPaged[ChatThreadItem]:
        """List the user's threads, page by page.

        Args:
            results_per_page: the page size.
            start_time: only threads with activity since then.
            **kwargs: per-call pipeline options, applied to every page.

        Returns:
            An iterator of :class:`ChatThreadItem`, with ``by_page()``.

        Raises:
            azure.core.exceptions.HttpResponseError: while iterating.
        """
        version = kwargs.pop("api_version", None)
        pager = self._requests.list_chat_threads(results_per_page, start_time, version)
        return item_paged(lambda call: self._runner.run(call, **kwargs), pager)

    @distributed_trace
    def delete_chat_thread(self, thread_id: str, **kwargs: Any) -> None:
        """Delete a thread.

        Args:
            thread_id: the thread to delete.

        Raises:
            ValueError: ``thread_id`` is empty.
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.delete_chat_thread(thread_id, kwargs.pop("api_version", None))
        self._runner.run(call, **kwargs)

    def close(self) -> None:
        """Stop real-time notifications and close the connection pool, that of every thread client with it."""
        self.stop_realtime_notifications()
        self._runner.close()
        self._close_own_transports()

    def _close_own_transports(self) -> None:
        transports, self._own_transports = self._own_transports, []
        for transport in transports:
            transport.close()

    def __enter__(self) -> ChatClient:
        self._runner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.stop_realtime_notifications()
        self._runner.__exit__(*args)
        self._close_own_transports()
