"""Delivery: one task per subscription this node holds the lease of.

The :class:`Dispatcher` (one per server process) looks for subscriptions
every few seconds and takes the lease of those nobody holds (or whose holder
stopped renewing). Each :class:`_Worker` then reads the event log after the
subscription's cursor, maps and filters the events, and POSTs them in order,
batch after batch: a batch is retried (Event Grid's schedule) until it is
delivered or dead-lettered, and only then does the cursor move. Order per
thread (indeed per subscription) is thus kept, and a crash at any point
re-delivers from the last saved cursor: at-least-once, same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from threadline.protocol.times import now_ms
from threadline.store.base import Store, StoreError
from threadline.store.records import Event, ThreadRecord
from threadline.store.webhooks import DeadLetterRecord, Progress, SubscriptionRecord, WebhookStore

from . import cursor as cursors
from . import telemetry
from .delivery import Poster, validation_echo
from .envelopes import CLOUDEVENTS, body, validation_event
from .mapping import ChatEvent, map_event
from .model import matches
from .safety import AllowList, DestinationError, check_destination
from .schedule import retry_delay_ms

__all__ = ["Dispatcher", "WebhookConfig"]

log = logging.getLogger("threadline.webhooks")

PAGE = 500
#: Event Grid's cap on a batch body (1 MB): a batch ends before it would pass this.
MAX_BATCH_BYTES = 1024 * 1024
#: Most never-logged (typing) deliveries in flight per node.
MAX_EPHEMERAL = 100


@dataclass(slots=True)
class WebhookConfig:
    """The webhook settings of a node (``docs/limits.md``).

    Attributes:
        topic: ``topic``/``source`` of every event.
        allow: destinations allowed although not public.
        timeout: seconds per request.
        poll: seconds between looks at the event log when idle.
        lease: seconds a lease lasts unless renewed (renewed every third).
        retry_scale: multiplies the retry schedule.
        public_url: base of the ``validationUrl`` (None: omitted).
    """

    topic: str
    allow: AllowList
    timeout: float = 30.0
    poll: float = 0.25
    lease: float = 15.0
    retry_scale: float = 1.0
    public_url: str | None = None


class _LeaseLost(Exception):
    pass


def _take(queue: list[ChatEvent], most: int) -> list[ChatEvent]:
    """The next batch: up to ``most`` events and about :data:`MAX_BATCH_BYTES` (at least one event)."""
    size = 0
    for index, event in enumerate(queue[:most]):
        size += len(msgspec.json.encode(event.data)) + 512  # the envelope around the data
        if size > MAX_BATCH_BYTES and index > 0:
            return queue[:index]
    return queue[:most]


class _Worker:
    def __init__(self, node: str, ws: WebhookStore, store: Store, config: WebhookConfig, poster: Poster,
                 sub_id: str) -> None:
        self.node, self.ws, self.store, self.config, self.poster = node, ws, store, config, poster
        self.sub_id = sub_id
        self.woken = asyncio.Event()
        self._threads: OrderedDict[str, ThreadRecord | None] = OrderedDict()

    async def _thread(self, thread_id: str) -> ThreadRecord | None:
        if thread_id not in self._threads:
            self._threads[thread_id] = await self.store.get_thread(thread_id)
            if len(self._threads) > 1000:
                self._threads.popitem(last=False)
        return self._threads[thread_id]

    async def _save(self, progress: Progress) -> None:
        if not await self.ws.save_progress(self.sub_id, self.node, now_ms(), progress):
            raise _LeaseLost()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, min(seconds, self.config.lease / 3)))

    async def run(self) -> None:
        """Deliver until the lease is lost or the subscription removed."""
        while True:
            sub = await self.ws.get_subscription(self.sub_id)
            if sub is None or sub.lease_owner != self.node:
                return
            wait = sub.next_attempt_ms - now_ms()
            if wait > 0:
                await self._sleep(wait / 1000)
                continue
            if sub.status != "active":
                await self._handshake(sub)
                continue
            if await self._replay(sub):
                continue
            if not await self._deliver_page(sub):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.woken.wait(), self.config.poll)
                self.woken.clear()

    async def _handshake(self, sub: SubscriptionRecord) -> bool:
        if sub.schema == CLOUDEVENTS:
            result = await self.poster.abuse_protection(sub.url)
            passed = result.ok
        else:
            url = None
            if self.config.public_url:
                base = self.config.public_url.rstrip("/")
                url = f"{base}/admin/webhooks/{sub.id}/validate?code={sub.validation_code}"
            payload = validation_event(sub.id, sub.validation_code, url, self.config.topic, now_ms())
            result = await self.poster.post(sub.url, payload, schema=sub.schema, sub_name=sub.id,
                                            kind="SubscriptionValidation", delivery_count=sub.attempts,
                                            secret=sub.secret, count=1, first_id="")
            passed = result.ok and validation_echo(result.body) == sub.validation_code
        telemetry.attempt(sub.id, count=0, status=result.status, outcome="validated" if passed else "handshake",
                          delivery_count=sub.attempts, ms=result.ms, first_id="", error=result.error)
        if passed:
            await self.ws.activate(sub.id, None)
            return True
        # Stay pending (the validationUrl may still be visited); ask again on the retry schedule.
        failures = sub.attempts + 1
        await self._save(Progress(sub.cursor, failures, sub.first_attempt_ms or now_ms(),
                                  now_ms() + retry_delay_ms(min(failures, 4), self.config.retry_scale)))
        return False

    async def _replay(self, sub: SubscriptionRecord) -> bool:
        """Redeliver dead letters marked for replay (one attempt each; kept on failure)."""
        marked = [d for d in await self.ws.list_deadletters(sub.id, 1000) if d.replay][:50]
        if not marked:
            return False
        done: list[int] = []
        for dead in marked:
            single = sub.schema == CLOUDEVENTS and sub.batch_size == 1
            payload = dead.envelope if single else b"[" + dead.envelope + b"]"
            result = await self.poster.post(sub.url, payload, schema=sub.schema, sub_name=sub.id,
                                            kind="Notification", delivery_count=dead.attempts,
                                            secret=sub.secret, count=1, first_id=dead.event_id)
            telemetry.attempt(sub.id, count=1, status=result.status,
                              outcome="delivered" if result.ok else "replay-failed",
                              delivery_count=dead.attempts, ms=result.ms, first_id=dead.event_id, error=result.error)
            if result.ok:
                done.append(dead.id)
        await self._save(Progress(sub.cursor, sub.attempts, sub.first_attempt_ms, sub.next_attempt_ms,
                                  replayed=done))
        # Failed replays stay marked; do not spin on them.
        return bool(done)

    async def _deliver_page(self, sub: SubscriptionRecord) -> bool:
        """Deliver one page of the log; False when there was nothing to read."""
        start = cursors.read(sub.cursor, self.store.partitions)
        events = await self.ws.events_after(start.after, PAGE)
        self._threads.clear()  # thread properties are read afresh for each page
        end = cursors.loaded_end(events, start)
        latest = await self.ws.latest_positions()
        oldest = events[0].created_ms if events else now_ms()
        telemetry.lag(sub.id, cursors.lag(latest, start), max(0.0, (now_ms() - oldest) / 1000), 0)
        if not events:
            return False
        # Map lazily: a page of 500 events in threads of 250 would be 125,000 user-level events.
        queue: list[ChatEvent] = []
        reached = start.copy()  # past every event mapped into the queue so far
        sent = False
        attempts, first = sub.attempts, sub.first_attempt_ms
        for index, event in enumerate(events):
            thread = await self._thread(event.thread_id)
            queue.extend(e for e in map_event(event, self.config.topic, thread) if matches(sub, e))
            reached.advance(event.position)
            last = index == len(events) - 1
            while queue and (len(queue) >= sub.batch_size or last):
                batch = _take(queue, sub.batch_size)
                retry_at = cursors.after_batch(queue, reached).token()  # the batch not handled yet
                dead, attempts, first = await self._attempt_until_done(sub, batch, attempts, first, retry_at)
                queue = queue[len(batch):]
                await self._save(Progress(cursors.after_batch(queue, reached).token(), dead=dead))
                sent = True
        if not sent:
            await self._save(Progress(end.token()))
        return True

    async def _attempt_until_done(
        self, sub: SubscriptionRecord, batch: list[ChatEvent], attempts: int, first: int | None, retry_at: str
    ) -> tuple[list[DeadLetterRecord], int, int | None]:
        """Try a batch until it is delivered (no dead letters) or given up (its dead letters).

        ``retry_at`` is the cursor saved with each retry: just before the batch.
        """
        payload = body(batch, sub.schema, self.config.topic, single=sub.batch_size == 1)
        while True:
            started = now_ms()
            first = first or started
            try:
                await check_destination(sub.url, self.config.allow)
                result = await self.poster.post(sub.url, payload, schema=sub.schema, sub_name=sub.id,
                                                kind="Notification", delivery_count=attempts,
                                                secret=sub.secret, count=len(batch), first_id=batch[0].id)
            except DestinationError as exc:
                error: str | None = str(exc)
                status, retry, ms = None, False, 0.0
            else:
                if result.ok:
                    telemetry.attempt(sub.id, count=len(batch), status=result.status, outcome="delivered",
                                      delivery_count=attempts, ms=result.ms, first_id=batch[0].id)
                    return [], 0, None
                error, status, retry, ms = result.error, result.status, result.retry, result.ms
            attempts += 1
            expired = now_ms() - batch[0].time_ms >= sub.ttl_minutes * 60_000  # TTL counts from the commit
            if not retry or attempts >= sub.max_attempts or expired:
                reason = error if not retry else ("TimeToLiveExceeded" if expired else "MaxDeliveryAttemptsExceeded")
                telemetry.attempt(sub.id, count=len(batch), status=status, outcome="dead-lettered",
                                  delivery_count=attempts - 1, ms=ms, first_id=batch[0].id, error=error)
                return self._dead(sub, batch, f"{reason} (last: {error})", attempts), 0, None
            delay = retry_delay_ms(attempts, self.config.retry_scale)
            telemetry.attempt(sub.id, count=len(batch), status=status, outcome="retrying",
                              delivery_count=attempts - 1, ms=ms, first_id=batch[0].id, error=error)
            telemetry.lag(sub.id, 0, (now_ms() - batch[0].time_ms) / 1000, len(batch))
            await self._save(Progress(retry_at, attempts, first, now_ms() + delay))
            deadline = now_ms() + delay
            while now_ms() < deadline:
                await self._sleep((deadline - now_ms()) / 1000)
                current = await self.ws.get_subscription(sub.id)
                if current is None or current.lease_owner != self.node:
                    raise _LeaseLost()

    def _dead(self, sub: SubscriptionRecord, batch: list[ChatEvent], reason: str,
              attempts: int) -> list[DeadLetterRecord]:
        now = now_ms()
        return [
            DeadLetterRecord(0, sub.id, e.id, e.event_type, e.thread_id, e.position,
                             body([e], sub.schema, self.config.topic)[1:-1], reason[:500], attempts, now)
            for e in batch
        ]


class Dispatcher:
    """Runs the workers of the subscriptions this node leases.

    Args:
        store: the opened store.
        config: the webhook settings.
    """

    def __init__(self, store: Store, config: WebhookConfig) -> None:
        self.node = f"node-{uuid.uuid4().hex[:12]}"
        self._store = store
        self._ws = store.webhooks
        self._config = config
        self._poster = Poster(config.timeout)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._workers: dict[str, _Worker] = {}
        self._main: asyncio.Task[None] | None = None
        self._active: list[SubscriptionRecord] = []
        self._fired: set[asyncio.Task[None]] = set()

    def ephemeral(self, events: Sequence[Event]) -> None:
        """Deliver never-logged events (typing) committed on this node: once, best effort, no lease.

        They are thread-level, so the node that saw them sends them; at most
        :data:`MAX_EPHEMERAL` are in flight, the rest are dropped (as ACS may drop typing).
        """
        for event in events:
            if event.position != 0:
                continue
            items = map_event(event, self._config.topic)
            for sub in self._active:
                matched = [i for i in items if matches(sub, i)]
                if matched and len(self._fired) < MAX_EPHEMERAL:
                    task = asyncio.create_task(self._fire(sub, matched))
                    self._fired.add(task)
                    task.add_done_callback(self._fired.discard)

    async def _fire(self, sub: SubscriptionRecord, items: list[ChatEvent]) -> None:
        try:
            await check_destination(sub.url, self._config.allow)
        except DestinationError as exc:
            telemetry.attempt(sub.id, count=len(items), status=None, outcome="dropped", delivery_count=0, ms=0,
                              first_id=items[0].id, error=str(exc))
            return
        payload = body(items, sub.schema, self._config.topic, single=sub.batch_size == 1)
        result = await self._poster.post(sub.url, payload, schema=sub.schema,
                                         sub_name=sub.id, kind="Notification", delivery_count=0,
                                         secret=sub.secret, count=len(items), first_id=items[0].id)
        telemetry.attempt(sub.id, count=len(items), status=result.status,
                          outcome="delivered" if result.ok else "dropped", delivery_count=0, ms=result.ms,
                          first_id=items[0].id, error=result.error)

    def wake(self) -> None:
        """Tell the idle workers of this node that an event was just committed."""
        for worker in self._workers.values():
            worker.woken.set()

    async def start(self) -> None:
        """Start looking for subscriptions to deliver."""
        self._main = asyncio.create_task(self._loop(), name="threadline-webhooks")

    async def stop(self) -> None:
        """Stop every worker and give the leases back (so another node takes over at once)."""
        tasks = [t for t in (self._main, *self._tasks.values(), *self._fired) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sub_id in list(self._tasks):
            with contextlib.suppress(StoreError):
                await self._ws.release_lease(sub_id, self.node)
        self._tasks.clear()
        await self._poster.close()

    async def _loop(self) -> None:
        interval = max(0.05, min(2.0, self._config.lease / 3))
        while True:
            try:
                await self._round()
            except StoreError as exc:
                log.warning("webhook dispatcher: %s", exc)
            await asyncio.sleep(interval)

    async def _round(self) -> None:
        now = now_ms()
        lease_ms = int(self._config.lease * 1000)
        subs = await self._ws.list_subscriptions()
        self._active = [s for s in subs if s.status == "active"]
        for sub in subs:
            running = self._tasks.get(sub.id)
            if running is not None and running.done():
                self._tasks.pop(sub.id)
                running = None
            free = sub.lease_owner in (None, self.node) or sub.lease_expires_ms < now
            held = free and await self._ws.acquire_lease(sub.id, self.node, now, lease_ms)
            if held and running is None:
                self._tasks[sub.id] = asyncio.create_task(self._run(sub.id), name=f"threadline-webhook-{sub.id}")
            telemetry.LEASED.labels(sub.id).set(1 if held else 0)
        for sub_id, task in list(self._tasks.items()):
            if task.done():
                self._tasks.pop(sub_id)
                telemetry.LEASED.labels(sub_id).set(0)

    async def _run(self, sub_id: str) -> None:
        worker = self._workers[sub_id] = _Worker(self.node, self._ws, self._store, self._config, self._poster,
                                                 sub_id)
        try:
            await worker.run()
        except _LeaseLost:
            log.info("webhook lease lost", extra={"subscription": sub_id, "node": self.node})
        except StoreError as exc:
            log.warning("webhook worker stopped: %s", exc, extra={"subscription": sub_id})
            await asyncio.sleep(1)
        except Exception:  # a bug: log it; the next dispatcher round starts a new worker
            log.exception("webhook worker failed", extra={"subscription": sub_id})
            await asyncio.sleep(1)
        finally:
            self._workers.pop(sub_id, None)
