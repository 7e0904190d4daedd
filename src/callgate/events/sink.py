"""The production :class:`~callgate.calls.live.EventSink`: call events into the webhook outbox.

``emit`` only appends to an in-memory queue (it never blocks the engine's event loop and never
raises). A writer task takes what is queued, up to ``BATCH`` events at a time, and writes it in
one transaction: for each event, one ``webhook_deliveries`` row per matching handler — the
extension's active handlers of that event type and, when the extension is a phone, its client's
``phone_events`` handlers of that type. Handlers are matched when the event is written, so a
handler added a moment after a call event does not receive it. Then the writer wakes the delivery
worker of this process (other processes find the rows by polling).

The durability window: between ``emit`` and the commit an event exists only in memory. The
writer starts as soon as an event is queued, so the window is one transaction long (a few
milliseconds, longer while the database is slow); events queued while a batch is written go into
the next one. ``stop`` writes everything still queued. A crash of the process inside the window
loses those events; everything committed is delivered at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections import defaultdict, deque
from typing import Any
from urllib.parse import urlencode

from callgate.calls.live import CallEvent
from callgate.common.clock import monotonic, utcnow
from callgate.common.db import Database
from callgate.config import Settings
from callgate.events.delivery import outbox_written
from callgate.events.models import DeliveryState
from callgate.events.repository import MatchingHandler, OutboxRepository

log = logging.getLogger("callgate.webhooks")

BATCH = 500
# A failed write is tried again after this many seconds, doubling up to RETRY_CAP.
RETRY_FIRST = 0.1
RETRY_CAP = 5.0
MAX_EVENT_ID = 64  # columns of webhook_deliveries
MAX_CALL_ID = 36
# stop() keeps trying to write what is queued for this long before it gives up (and says so).
STOP_DEADLINE = 30.0


def order_key(url: str, call_id: str) -> str:
    """Deliveries with the same key are sent one after another (same URL, same call)."""
    return hashlib.sha256(f"{url}\n{call_id}".encode()).hexdigest()


def outbox_rows(
    batch: list[tuple[CallEvent, dt.datetime]],
    handlers: list[MatchingHandler],
    phones: set[int],
) -> list[dict[str, Any]]:
    """The deliveries of a batch of events: one per event and matching handler."""
    by_kind: dict[tuple[int, str], list[MatchingHandler]] = defaultdict(list)
    for handler in handlers:
        by_kind[(handler.client_id, handler.event_type)].append(handler)
    rows: list[dict[str, Any]] = []
    for event, emitted_at in batch:
        if len(event.event_id) > MAX_EVENT_ID or len(event.call_id) > MAX_CALL_ID:
            # Not storable; retrying the batch would only block the events behind it.
            log.error("webhook outbox: event %.80r has an over-long id, not stored", event.event_id)
            continue
        payload: str | None = None
        for handler in by_kind.get((event.client_id, str(event.event_type)), ()):
            if handler.extension_id is None:
                if event.extension_id not in phones:
                    continue
            elif handler.extension_id != event.extension_id:
                continue
            if payload is None:
                payload = urlencode(event.fields())
            rows.append(
                {
                    "event_id": event.event_id,
                    "handler_id": handler.id,
                    "event_type": str(event.event_type),
                    "call_id": event.call_id,
                    "order_key": order_key(handler.url, event.call_id),
                    "payload": payload,
                    "raised_at": emitted_at,
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": emitted_at,
                }
            )
    return rows


class OutboxSink:
    """An ``EventSink`` that stores events in the outbox for the delivery worker (module doc)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._queue: deque[tuple[CallEvent, dt.datetime]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._writing = 0  # events taken from the queue and not yet committed
        self.written = 0  # deliveries written so far (rows), for tests and metrics
        self.dropped = 0

    # -- the engine's side -----------------------------------------------------------------------

    def emit(self, event: CallEvent) -> None:
        try:
            if len(self._queue) >= self.settings.webhook_queue_max:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error(
                        "webhook outbox: %d events in memory, dropping event %s (%d dropped); "
                        "is the database reachable?",
                        len(self._queue),
                        event.event_id,
                        self.dropped,
                    )
                return
            self._queue.append((event, utcnow()))
            self._signal()
        except Exception:  # the engine must not be disturbed by its event sink
            log.exception("webhook outbox: could not queue event %s", event.event_id)

    def _signal(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return  # not started yet: start() looks at the queue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wakeup.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(wakeup.set)

    # -- the writer ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="webhook-outbox-writer")
        if self._queue:
            self._wakeup.set()

    async def stop(self) -> None:
        """Write what is queued (trying for up to ``STOP_DEADLINE`` seconds), then end."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_DEADLINE + 5)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        if self._queue:
            log.error(
                "webhook outbox: stopped with %d events not written (database unreachable)",
                len(self._queue),
            )

    async def drained(self, seconds: float = 10.0) -> bool:
        """Wait until everything emitted so far is committed; False after ``seconds``."""
        deadline = monotonic() + seconds
        while self._queue or self._writing:
            if monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def _run(self) -> None:
        assert self._wakeup is not None
        delay = RETRY_FIRST
        stop_deadline: float | None = None
        while True:
            if not self._queue:
                if self._stopping:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            self._writing = len(batch)
            try:
                self.written += await asyncio.to_thread(self._write, batch)
                delay = RETRY_FIRST
            except Exception as exc:
                # Keep the events, in order, and try again; the database may be restarting.
                self._queue.extendleft(reversed(batch))
                log.warning(
                    "webhook outbox: writing %d events failed (%s); retrying in %.1f s",
                    len(batch),
                    type(exc).__name__,
                    delay,
                )
                if self._stopping:
                    stop_deadline = stop_deadline or monotonic() + STOP_DEADLINE
                    if monotonic() > stop_deadline:
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), delay)
                self._wakeup.clear()
                delay = min(delay * 2, RETRY_CAP)
                continue
            finally:
                self._writing = 0
            outbox_written(self.database)

    def _write(self, batch: list[tuple[CallEvent, dt.datetime]]) -> int:
        with self.database.write_connection() as connection:
            outbox = OutboxRepository(connection)
            handlers = outbox.matching_handlers(
                {event.client_id for event, _ in batch},
                {str(event.event_type) for event, _ in batch},
            )
            if not handlers:
                return 0
            phones: set[int] = set()
            if any(handler.extension_id is None for handler in handlers):
                phones = outbox.phone_extensions({event.extension_id for event, _ in batch})
            rows = outbox_rows(batch, handlers, phones)
            outbox.add(rows)
            return len(rows)
