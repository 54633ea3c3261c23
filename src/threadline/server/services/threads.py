"""Threads and their participants."""

from __future__ import annotations

from typing import Any

import msgspec

from threadline.protocol import ids
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.inputs import invalid, parse_time_ms
from threadline.protocol.times import now_ms
from threadline.protocol.wire import CommunicationError, Identifier, Participant
from threadline.server.events import Hub
from threadline.server.limits import Limits
from threadline.store.base import Effects, Store, TooManyParticipants
from threadline.store.metadata import MetadataTooLarge
from threadline.store.records import (
    MessageDraft,
    MessageRecord,
    MetadataPatch,
    ParticipantRecord,
    RetentionChange,
    ThreadRecord,
    ThreadUpdate,
)

from . import payloads
from .access import Access
from .actor import Actor
from .common import (
    Page,
    require_member,
    require_member_thread,
    resolve_identifier,
    validate_metadata,
    validate_page_size,
    validate_skip,
)
from .retention import expiry_ms, validate_retention
from .thread_inputs import parse_list_cursor, thread_topic, wire_members

__all__ = ["CreatedThread", "ThreadService"]


class CreatedThread(msgspec.Struct):
    """A created thread and the participants that could not be added."""

    thread: ThreadRecord
    invalid: list[CommunicationError]


class _Replay(msgspec.Struct):
    thread_id: str
    invalid: list[CommunicationError]


class ThreadService:
    """Creates, reads, retitles and deletes threads; manages their members.

    Args:
        store: the database.
        hub: where committed events go.
        limits: sizes to enforce.
        resource_id: the resource whose users may join threads.
        access: the access cache in front of the store (None: read the store every time).
    """

    def __init__(
        self, store: Store, hub: Hub, limits: Limits, resource_id: str, access: Access | None = None
    ) -> None:
        self._store = store
        self._hub = hub
        self._limits = limits
        self._resource_id = resource_id
        self._access = access or Access(store)

    # -- validation ------------------------------------------------------------------------------

    def _thread_full(self) -> ChatServiceError:
        return invalid(f"A thread holds at most {self._limits.participants_per_thread} participants.", "participants")

    async def _known(
        self, members: list[ParticipantRecord], errors: list[CommunicationError]
    ) -> list[ParticipantRecord]:
        """Keep the members that are live users; the others become 404 errors."""
        users = await self._store.get_users([m.user_id for m in members])
        known = []
        for m in members:
            user = users.get(m.user_id)
            if user is None or user.deleted_ms is not None:
                errors.append(CommunicationError(code="404", message="Not found", target=m.user_id))
            else:
                known.append(m)
        return known

    # -- threads ---------------------------------------------------------------------------------

    async def create(
        self,
        actor: Actor,
        topic: str | None,
        participants: list[Participant] | None,
        *,
        metadata: dict[str, str] | None = None,
        retention_policy: Any = None,
        repeatability_id: str | None = None,
    ) -> CreatedThread:
        """Create a thread; the creator is always a member.

        Args:
            actor: the caller.
            topic: the thread's topic.
            participants: the first members (the creator is added when missing).
            metadata: the thread's metadata.
            retention_policy: the decoded ``retentionPolicy`` (see :mod:`.retention`).
            repeatability_id: makes the create happen once.

        Returns:
            The thread and the participants that could not be added.

        Raises:
            ChatServiceError: 400 for bad input, 403 without the ``chat`` scope.
        """
        if not actor.can_manage_threads:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "The token may not create threads.")
        topic = thread_topic(self._limits, topic)
        validate_metadata(metadata, self._limits)
        retention = validate_retention(retention_policy)
        scope_key = ("create-thread:" + actor.user_id, repeatability_id) if repeatability_id else None
        members, errors = wire_members(self._limits, self._resource_id, participants or [])
        members = await self._known(members, errors)
        if not any(m.user_id == actor.user_id for m in members):
            members.insert(0, ParticipantRecord(actor.user_id))
        if len(members) > self._limits.participants_per_thread:
            raise self._thread_full()
        now = now_ms()
        thread = ThreadRecord(
            ids.new_thread_id(), topic, now, actor.user_id, metadata=metadata,
            retention=retention, expires_ms=expiry_ms(retention, now),
        )
        drafts = [
            MessageDraft("participantAdded", participants=members, initiator_id=actor.user_id),
            MessageDraft("topicUpdated", topic=topic, initiator_id=actor.user_id),
        ]
        effects: Effects[list[MessageRecord]] = Effects(
            idempotency=scope_key,
            result=lambda _: msgspec.json.encode(_Replay(thread.id, errors)).decode(),
            events=lambda _: payloads.thread_created(thread, members),
        )
        try:
            outcome = await self._store.create_thread(
                thread, members, drafts, effects, max_members=self._limits.participants_per_thread
            )
        except TooManyParticipants:
            raise self._thread_full() from None
        if outcome.replayed is not None:
            return await self._from_replay(outcome.replayed)
        await self._hub.publish(outcome.events)
        return CreatedThread(thread, errors)

    async def _from_replay(self, stored: str) -> CreatedThread:
        replay = msgspec.json.decode(stored, type=_Replay)
        thread = await self._store.get_thread(replay.thread_id)
        if thread is None:  # pragma: no cover - threads are never erased
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.")
        return CreatedThread(thread, replay.invalid)

    async def get(self, actor: Actor, thread_id: str) -> ThreadRecord:
        """Return a thread's properties.

        Raises:
            ChatServiceError: 404 unknown or deleted, 403 not a member.
        """
        thread, _ = await require_member_thread(self._store, actor, thread_id)
        return thread

    async def update(
        self,
        actor: Actor,
        thread_id: str,
        topic: str | None,
        metadata: dict[str, str | None] | msgspec.UnsetType | None = msgspec.UNSET,
        retention_policy: Any = msgspec.UNSET,
    ) -> None:
        """Update a thread's properties (merge-patch): topic, metadata, retention policy.

        An UNSET field is left as it is; ``None`` metadata or retention policy removes it,
        a metadata key whose value is None is removed. A ``chatThreadPropertiesUpdated``
        event follows any change; a ``topicUpdated`` message only a change of topic.

        Args:
            actor: the caller.
            thread_id: the thread.
            topic: the new topic (None: unchanged).
            metadata: a metadata patch.
            retention_policy: the decoded ``retentionPolicy``.

        Raises:
            ChatServiceError: 400 bad topic, metadata or policy; 403; 404.
        """
        thread, _ = await require_member_thread(self._store, actor, thread_id)
        if not actor.can_manage_threads:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "The token may not update threads.")
        new_topic = thread_topic(self._limits, topic) if topic is not None else None
        patch = None if isinstance(metadata, msgspec.UnsetType) else MetadataPatch(
            dict(metadata or {}), clear=metadata is None, max_bytes=self._limits.metadata_bytes)
        if patch is not None:  # checked early here, and again by the store on the map it stores
            validate_metadata(patch.merged(thread.metadata), self._limits)
        retention: RetentionChange | None = None
        if not isinstance(retention_policy, msgspec.UnsetType):
            policy = validate_retention(retention_policy)
            retention = RetentionChange(policy, expiry_ms(policy, thread.created_ms))
        if new_topic is None and patch is None and retention is None:
            return
        now = now_ms()
        draft = MessageDraft("topicUpdated", topic=new_topic, initiator_id=actor.user_id) if new_topic else None
        effects: Effects[ThreadUpdate] = Effects(
            events=lambda update: payloads.thread_updated(update.thread, actor.user_id, now)
        )
        try:  # the store merges the patch into the map it reads under the thread's lock
            outcome = await self._store.update_thread(
                thread_id, topic=new_topic, metadata=patch, draft=draft, now_ms=now, effects=effects,
                retention=retention,
            )
        except MetadataTooLarge as exc:  # with the keys of a concurrent patch
            raise invalid(f"metadata must not exceed {exc.limit} bytes.", "metadata") from None
        if outcome.value is None:
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="chatThreadId")
        await self._hub.publish(outcome.events)

    async def delete(self, actor: Actor, thread_id: str) -> None:
        """Delete a thread; deleting a deleted thread again succeeds quietly.

        Raises:
            ChatServiceError: 404 unknown, 403 not a member or no ``chat`` scope.
        """
        thread, member = await self._store.get_access(thread_id, actor.user_id)
        if thread is None:
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="chatThreadId")
        if member is None or not actor.can_manage_threads:
            raise ChatServiceError(ErrorKind.FORBIDDEN)
        if thread.deleted_ms is not None:
            return
        now = now_ms()
        effects: Effects[ThreadRecord] = Effects(
            events=lambda _: payloads.thread_deleted(thread_id, actor.user_id, now)
        )
        try:
            outcome = await self._store.delete_thread(thread_id, now, effects)
        finally:
            await self._access.changed(threads=[thread_id])
        await self._hub.publish(outcome.events)

    async def list_threads(
        self, actor: Actor, *, page_size: int | None, start_time: str | None, cursor: str | None
    ) -> Page[ThreadRecord]:
        """List the actor's threads, most recent activity first.

        Raises:
            ChatServiceError: 400 for a bad page size, start time or cursor.
        """
        size = validate_page_size(page_size, self._limits)
        start = parse_time_ms(start_time, "startTime")
        after = parse_list_cursor(cursor) if cursor else None
        rows = await self._store.list_threads(actor.user_id, start_ms=start, limit=size + 1, after=after)
        next_cursor = None
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            next_cursor = f"{last.last_message_ms or last.created_ms}.{last.id.encode().hex()}"
        return Page(rows, next_cursor)

    # -- participants ----------------------------------------------------------------------------

    async def list_participants(
        self, actor: Actor, thread_id: str, *, page_size: int | None, skip: int | None
    ) -> Page[ParticipantRecord]:
        """List live members in join order.

        Raises:
            ChatServiceError: 400, 403, 404.
        """
        size = validate_page_size(page_size, self._limits)
        offset = validate_skip(skip)
        await require_member(self._access, actor, thread_id)
        rows = await self._store.list_participants(thread_id, skip=offset, limit=size + 1)
        return Page.by_offset(rows, size, offset)

    async def add_participants(
        self, actor: Actor, thread_id: str, participants: list[Participant], *, repeatability_id: str | None
    ) -> list[CommunicationError]:
        """Add members; return those that could not be added, as ACS errors.

        Members already in the thread are left exactly as they are (share-history
        time, display name, metadata) and not announced again: a member cannot
        widen its own history window, nor narrow another's, by re-adding. A user
        who left is added anew, with the window of this request.

        The participant cap counts live members plus the new ones, inside the
        store's write transaction, so concurrent adds cannot together pass it.

        Raises:
            ChatServiceError: 400 empty, too many in the batch or the thread full, 403, 404.
        """
        await require_member(self._access, actor, thread_id)
        if not actor.can_manage_members:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "The token may not add participants.")
        if not participants:
            raise invalid("participants must not be empty.", "participants")
        members, errors = wire_members(self._limits, self._resource_id, participants)
        members = await self._known(members, errors)
        if not members:
            return errors
        now = now_ms()
        draft = MessageDraft("participantAdded", initiator_id=actor.user_id)
        scope_key = (f"add:{actor.user_id}:{thread_id}", repeatability_id) if repeatability_id else None
        effects: Effects[MessageRecord | None] = Effects(
            idempotency=scope_key,
            result=lambda _: msgspec.json.encode(errors).decode(),
            events=lambda m: payloads.participants_event(True, m) if m is not None else [],
        )
        try:
            outcome = await self._store.add_participants(
                thread_id, members, draft, now, effects, max_members=self._limits.participants_per_thread
            )
        except TooManyParticipants:
            raise self._thread_full() from None
        finally:  # a user who joins anew has a new window (docs/design.md, "Access cache")
            await self._access.changed(members=[(thread_id, m.user_id) for m in members])
        if outcome.replayed is not None:
            return msgspec.json.decode(outcome.replayed, type=list[CommunicationError])
        await self._hub.publish(outcome.events)
        return errors

    async def remove_participant(self, actor: Actor, thread_id: str, identifier: Identifier) -> None:
        """Remove a member (anyone may leave); removing a non-member succeeds quietly.

        Raises:
            ChatServiceError: 400, 403, 404.
        """
        await require_member(self._access, actor, thread_id)
        raw = resolve_identifier(identifier)
        if raw != actor.user_id and not actor.can_manage_members:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "The token may not remove participants.")
        draft = MessageDraft("participantRemoved", initiator_id=actor.user_id)
        effects: Effects[MessageRecord | None] = Effects(
            events=lambda m: payloads.participants_event(False, m) if m is not None else []
        )
        try:
            outcome = await self._store.remove_participant(thread_id, raw, draft, now_ms(), effects)
        finally:
            await self._access.changed(members=[(thread_id, raw)])
        await self._hub.publish(outcome.events)
