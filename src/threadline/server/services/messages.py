"""Messages, read receipts and typing notifications."""

from __future__ import annotations

import nh3

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.inputs import MAX_ID_CHARS, check_text, invalid, parse_time_ms
from threadline.protocol.times import now_ms
from threadline.protocol.wire import Attachment
from threadline.server.events import Hub
from threadline.server.limits import Limits
from threadline.store.base import Effects, NotAllowed, Store
from threadline.store.blobs import AttachmentUnavailable
from threadline.store.metadata import MetadataTooLarge
from threadline.store.records import (
    Event,
    MessageDraft,
    MessageRecord,
    MetadataPatch,
    ParticipantRecord,
    ReadReceiptRecord,
)

from . import payloads
from .access import Access
from .actor import Actor
from .common import (
    Page,
    merge_metadata,
    parse_sequence_cursor,
    require_member,
    validate_metadata,
    validate_page_size,
    validate_skip,
)
from .images import attachment_error, require_own_images, validate_attachments

__all__ = ["MessageService", "sanitize_html"]

_USER_TYPES = {"text": "text", "html": "html"}


def sanitize_html(content: str) -> str:
    """Keep ordinary formatting and drop everything executable (scripts, handlers, URLs)."""
    return nh3.clean(content, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")


def _created(message: MessageRecord) -> int:
    """When a message was created: its events reach only members whose window holds it."""
    return message.created_ms


class MessageService:
    """Sends, reads, edits and deletes messages; read receipts and typing.

    Args:
        store: the database.
        hub: where committed events go.
        limits: sizes to enforce.
        access: the access cache in front of the store (None: read the store every time).
    """

    def __init__(self, store: Store, hub: Hub, limits: Limits, access: Access | None = None) -> None:
        self._store = store
        self._hub = hub
        self._limits = limits
        self._access = access or Access(store)

    def _content(self, content: str | None, kind: str) -> str:
        if content is None or not content.strip():
            raise invalid("content must not be empty.", "content")
        if len(content.encode("utf-8")) > self._limits.message_bytes:
            raise invalid(f"content must not exceed {self._limits.message_bytes} bytes.", "content")
        return sanitize_html(content) if kind == "html" else content

    async def send(
        self,
        actor: Actor,
        thread_id: str,
        content: str | None,
        *,
        kind: str | None,
        sender_display_name: str | None,
        metadata: dict[str, str] | None,
        repeatability_id: str | None,
        attachments: list[Attachment] | None = None,
    ) -> str:
        """Send a message and return its id; a repeated repeatability id returns the first id.

        ``attachments`` name images the actor uploaded to the thread.

        Raises:
            ChatServiceError: 400 bad content, type or attachment, 403, 404.
        """
        message_type = _USER_TYPES.get((kind or "text").lower())
        if message_type is None:
            raise invalid("type must be text or html.", "type")
        body = self._content(content, message_type)
        validate_metadata(metadata, self._limits)
        image_ids = validate_attachments(attachments, self._limits)
        if sender_display_name is not None and len(sender_display_name) > self._limits.display_name_chars:
            raise invalid("senderDisplayName is too long.", "senderDisplayName")
        if image_ids:
            await require_member(self._access, actor, thread_id)
            await require_own_images(self._store, actor, thread_id, image_ids)
        elif not actor.can_chat:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "The token has no chat scope.")
        # Otherwise membership is checked inside the write (the store's NotAllowed): one read fewer.
        draft = MessageDraft(
            message_type, sender_id=actor.user_id, sender_display_name=sender_display_name,
            content=body, metadata=metadata, attachments=image_ids or None,
        )
        scope_key = (f"send:{actor.user_id}:{thread_id}", repeatability_id) if repeatability_id else None
        effects: Effects[MessageRecord] = Effects(
            idempotency=scope_key,
            result=lambda m: m.id,
            events=lambda m: payloads.message_event("chatMessageReceived", m),
            reveals=_created,
        )
        try:
            outcome = await self._store.send_message(thread_id, draft, now_ms(), effects)
        except AttachmentUnavailable as exc:
            raise attachment_error(exc, image_ids or []) from None
        except NotAllowed as exc:
            if exc.thread_missing:
                raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="chatThreadId") from None
            raise ChatServiceError(ErrorKind.FORBIDDEN) from None
        if outcome.replayed is not None:
            return outcome.replayed
        await self._hub.publish(outcome.events)
        assert outcome.value is not None
        return outcome.value.id

    async def _visible(
        self, actor: Actor, thread_id: str, message_id: str, *, allow_deleted: bool = False
    ) -> tuple[MessageRecord, ParticipantRecord]:
        """The message and the actor's membership, if the actor is a member and the message
        is within the actor's shared history.

        Raises:
            ChatServiceError: 403 not a member; 404 unknown thread, or unknown, too old or
                (unless ``allow_deleted``) deleted message.
        """
        member = await require_member(self._access, actor, thread_id)
        message = await self._store.get_message(thread_id, message_id)
        if (
            message is None
            or (message.deleted_ms is not None and not allow_deleted)
            or message.created_ms < member.share_history_ms
        ):
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Message not found.", target="chatMessageId")
        return message, member

    async def get(self, actor: Actor, thread_id: str, message_id: str) -> MessageRecord:
        """Return a message the actor may see.

        Raises:
            ChatServiceError: 404 unknown, deleted or older than the actor's share-history time; 403.
        """
        message, _ = await self._visible(actor, thread_id, message_id)
        return message

    async def list_messages(
        self, actor: Actor, thread_id: str, *, page_size: int | None, start_time: str | None, cursor: str | None
    ) -> Page[MessageRecord]:
        """List messages newest first, deleted ones as tombstones.

        Raises:
            ChatServiceError: 400, 403, 404.
        """
        size = validate_page_size(page_size, self._limits)
        start = parse_time_ms(start_time, "startTime") or 0
        before = parse_sequence_cursor(cursor)
        member = await require_member(self._access, actor, thread_id)
        rows = await self._store.list_messages(
            thread_id, before_seq=before, min_created_ms=max(start, member.share_history_ms), limit=size + 1
        )
        if len(rows) > size:
            rows = rows[:size]
            return Page(rows, str(rows[-1].sequence_id))
        return Page(rows)

    async def update(
        self,
        actor: Actor,
        thread_id: str,
        message_id: str,
        *,
        content: str | None,
        metadata: dict[str, str | None] | None,
        attachments: list[Attachment] | None = None,
    ) -> None:
        """Edit the actor's own message; metadata is merged (a null value removes a key).

        ``attachments``, when given, replaces the message's images (those dropped are deleted).

        Raises:
            ChatServiceError: 400, 403 not the sender, 404.
        """
        image_ids = validate_attachments(attachments, self._limits)
        message, _ = await self._visible(actor, thread_id, message_id)
        if message.sender_id != actor.user_id:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "Only the sender may edit a message.")
        body = self._content(content, message.type) if content is not None else None
        # Checked here against the message read above, so a request's errors come in the usual order;
        # the store merges the patch again inside the write, with any concurrent edit's keys.
        merged = merge_metadata(message.metadata, metadata, self._limits) if metadata is not None else None
        if body is None and merged is None and image_ids is None:
            return
        patch = MetadataPatch(dict(metadata), max_bytes=self._limits.metadata_bytes) if metadata is not None else None
        if image_ids:
            await require_own_images(self._store, actor, thread_id, image_ids)
        effects: Effects[MessageRecord] = Effects(
            events=lambda m: payloads.message_event("chatMessageEdited", m), reveals=_created
        )
        try:
            outcome = await self._store.update_message(
                thread_id, message_id, content=body, metadata=patch, now_ms=now_ms(), effects=effects,
                attachments=image_ids,
            )
        except AttachmentUnavailable as exc:
            raise attachment_error(exc, image_ids or []) from None
        except MetadataTooLarge as exc:  # with the keys of a concurrent edit
            raise invalid(f"metadata must not exceed {exc.limit} bytes.", "metadata") from None
        await self._hub.publish(outcome.events)

    async def delete(self, actor: Actor, thread_id: str, message_id: str) -> None:
        """Delete the actor's own message; deleting it again succeeds quietly.

        Raises:
            ChatServiceError: 403 not the sender, 404 unknown message.
        """
        message, _ = await self._visible(actor, thread_id, message_id, allow_deleted=True)
        if message.sender_id != actor.user_id:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "Only the sender may delete a message.")
        if message.deleted_ms is not None:
            return
        effects: Effects[MessageRecord] = Effects(
            events=lambda m: payloads.message_event("chatMessageDeleted", m), reveals=_created
        )
        outcome = await self._store.delete_message(thread_id, message_id, now_ms(), effects)
        await self._hub.publish(outcome.events)

    async def send_read_receipt(
        self, actor: Actor, thread_id: str, message_id: str | None, *, repeatability_id: str | None
    ) -> None:
        """Record that the actor has read up to a message.

        Raises:
            ChatServiceError: 400 no message id, 403, 404 unknown message.
        """
        if not message_id:
            raise invalid("chatMessageId must not be empty.", "chatMessageId")
        check_text(message_id, "chatMessageId", MAX_ID_CHARS)
        message, member = await self._visible(actor, thread_id, message_id)
        name = member.display_name  # the reader's name in the thread
        receipt = ReadReceiptRecord(thread_id, actor.user_id, message_id, now_ms())
        scope_key = (f"receipt:{actor.user_id}:{thread_id}", repeatability_id) if repeatability_id else None
        effects: Effects[ReadReceiptRecord] = Effects(
            idempotency=scope_key, result=lambda r: r.message_id, events=lambda r: payloads.receipt_event(r, name),
            reveals=lambda _: message.created_ms,  # it names the message: only for those who may see it
        )
        outcome = await self._store.send_read_receipt(receipt, effects)
        await self._hub.publish(outcome.events)

    async def list_read_receipts(
        self, actor: Actor, thread_id: str, *, page_size: int | None, skip: int | None
    ) -> Page[ReadReceiptRecord]:
        """One receipt per reader, latest first; receipts naming a message older than the
        actor's share-history time are left out.

        Raises:
            ChatServiceError: 400, 403, 404.
        """
        size = validate_page_size(page_size, self._limits)
        offset = validate_skip(skip)
        member = await require_member(self._access, actor, thread_id)
        rows = await self._store.list_read_receipts(
            thread_id, skip=offset, limit=size + 1, min_message_ms=member.share_history_ms
        )
        return Page.by_offset(rows, size, offset)

    async def typing(self, actor: Actor, thread_id: str, sender_display_name: str | None) -> None:
        """Tell the other members the actor is typing (never stored, may be dropped).

        Raises:
            ChatServiceError: 403, 404.
        """
        await require_member(self._access, actor, thread_id)
        recipients = tuple(
            p.user_id
            for p in await self._store.list_participants(
                thread_id, skip=0, limit=self._limits.participants_per_thread
            )
        )
        now = now_ms()
        payload = payloads.typing_event(thread_id, actor.user_id, sender_display_name, now)
        await self._hub.publish([Event(0, thread_id, "typingIndicatorReceived", payload, now, recipients)])
