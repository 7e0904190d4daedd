"""The webhook delivery worker: sends the outbox's deliveries to event handlers (SPEC §6).

One asyncio task, in one transaction per turn, writes back the outcomes of the requests that
finished and claims due deliveries (a lease per claim, taken with a conditional UPDATE, so two
workers never send the same delivery at once and a crashed worker's lease runs out); the
requests run concurrently, up to ``webhook_concurrency``. Only the oldest pending delivery of
an order key (the same URL and call) is ever claimed, so the events of one call reach one URL in
order while other URLs and calls go on.

Requests go through :mod:`callgate.events.client` (why not httpx: see there). Outcomes: 2xx
delivered; 429, 5xx, timeouts and connection errors are retried with capped
exponential backoff and jitter (never sooner than ``Retry-After``) until the event is
``webhook_max_age`` old; 410 disables the handler; any other answer (3xx included: redirects
are not followed) ends that delivery, as does a destination refused by the client (a host
resolving to a loopback, private, link-local or otherwise non-public address, unless
``webhook_allow_private`` is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import itertools
import logging
import random
import time
import uuid
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

from callgate.common.clock import monotonic, utcnow
from callgate.common.db import Database
from callgate.config import Settings
from callgate.events.client import (
    ConnectFailed,
    DestinationRefused,
    RequestError,
    Target,
    WebhookClient,
)
from callgate.events.models import DeliveryState, HandlerStatus
from callgate.events.repository import Claimed, OutboxRepository, Recorded
from callgate.events.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature_header

log = logging.getLogger("callgate.webhooks")

BODY_LIMIT = 4096  # bytes of an answer read at most (then the connection is dropped)
PRUNE_EVERY = 60.0  # seconds
PRUNE_BATCH = 5000
STOP_GRACE = 5.0  # seconds in-flight requests get to finish on stop
DB_RETRY_CAP = 5.0


# -- requests ------------------------------------------------------------------------------------


def build_client(settings: Settings) -> WebhookClient:
    return WebhookClient(
        allow_private=settings.webhook_allow_private,
        connect_timeout=settings.webhook_connect_timeout,
        body_limit=BODY_LIMIT,
        max_idle=max(16, settings.webhook_concurrency),
    )


def shown_url(url: str) -> str:
    """The URL for logs: no query string (it may carry the receiver's own tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def with_query(url: str, payload: str) -> str:
    if url.endswith(("?", "&")):
        return url + payload
    return url + ("&" if urlsplit(url).query else "?") + payload


# -- retries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    base: float
    cap: float
    max_age: float

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.webhook_retry_base, settings.webhook_retry_cap, settings.webhook_max_age
        )

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones: "equal jitter" over a
        doubling delay of at most ``cap``; never sooner than the receiver's ``Retry-After``
        (even beyond ``cap``: past the maximum age, the event is given up instead)."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempts - 1, 40))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_age))
        return delay


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value[:9]))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


# -- the worker ------------------------------------------------------------------------------------

_running: weakref.WeakSet[DeliveryWorker] = weakref.WeakSet()


def outbox_written(database: Database) -> None:
    """New deliveries were committed: wake this process's workers on the same database."""
    for worker in list(_running):
        if worker.database is database or worker.database.url == database.url:
            worker.wake_threadsafe()


@dataclass
class Attempt:
    status_code: int | None = None
    error: str | None = None
    retry_after: str | None = None
    refused: bool = False


class DeliveryWorker:
    """The running delivery worker (``start_delivery`` returns one); ``stop()`` ends it."""

    def __init__(
        self, settings: Settings, database: Database, client: WebhookClient | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.policy = RetryPolicy.of(settings)
        self.client = client or build_client(settings)
        self.name = uuid.uuid4().hex[:20]
        self._leases = itertools.count(1)
        self._outstanding: dict[str, int] = {}  # lease -> deliveries not yet recorded
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: list[Recorded] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self.attempts = 0  # attempts recorded, for tests and metrics

    @property
    def lease_seconds(self) -> float:
        return self.settings.webhook_timeout + self.settings.webhook_connect_timeout + 5

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.create_task(self._run(), name="webhook-delivery")
        _running.add(self)

    def wake(self) -> None:
        self._wake.set()

    def wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        """Stop claiming, let requests in flight finish (``STOP_GRACE``), record their outcomes,
        give back the leases of anything not sent, close the client."""
        _running.discard(self)
        self._stopping = True
        self._wake.set()
        deadline = monotonic() + STOP_GRACE
        while self._tasks and monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - monotonic()))
        late = set(self._tasks)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        self._wake.set()
        if self._main is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._main, STOP_GRACE + 5)
        leases = [lease for lease, count in self._outstanding.items() if count > 0]
        if leases:
            try:
                await asyncio.to_thread(self._release, leases)
            except Exception as exc:
                log.warning("webhook delivery: releasing leases failed (%s)", type(exc).__name__)
        await self.client.aclose()

    # -- the loop: record what was sent, claim what is due, in one transaction ------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._stopping:
                await self._maybe_prune()
            self._wake.clear()
            outcomes, self._done = self._done, []
            free = 0 if self._stopping else self.settings.webhook_concurrency - len(self._tasks)
            claimed: list[Claimed] = []
            next_due: dt.datetime | None = None
            if outcomes or free > 0:
                try:
                    claimed, next_due = await asyncio.to_thread(self._cycle, outcomes, free)
                    failures = 0
                except Exception as exc:
                    self._done[:0] = outcomes
                    failures += 1
                    log.warning("webhook delivery: database error (%s)", type(exc).__name__)
                    if self._stopping and failures > 3:
                        return
                    await self._sleep(min(DB_RETRY_CAP, 0.1 * 2**failures))
                    continue
                self._recorded(outcomes)
                if not self._stopping:  # else their leases are given back by stop()
                    for item in claimed:
                        self._launch(item)
            if self._stopping:
                if not self._tasks and not self._done:
                    return
                await self._sleep(0.5)
                continue
            if free > 0 and len(claimed) == free:
                continue  # there may be more due
            timeout = self.settings.webhook_poll_interval
            if next_due is not None:
                timeout = min(timeout, max((next_due - utcnow()).total_seconds(), 0.005))
            if not self._done:
                await self._sleep(timeout)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _cycle(
        self, outcomes: list[Recorded], limit: int
    ) -> tuple[list[Claimed], dt.datetime | None]:
        lease = f"{self.name}-{next(self._leases)}"
        now = utcnow()
        until = now + dt.timedelta(seconds=self.lease_seconds)
        claimed: list[Claimed] = []
        next_due = None
        with self.database.write_connection() as connection:
            outbox = OutboxRepository(connection)
            outbox.record(outcomes, now)
            if limit > 0:
                claimed = outbox.claim(lease, limit, now, until)
                # With requests started, their ends wake the loop; else it must know when to.
                if not claimed:
                    next_due = outbox.next_due(now)
        if claimed:
            self._outstanding[lease] = len(claimed)
        return claimed, next_due

    def _recorded(self, outcomes: list[Recorded]) -> None:
        self.attempts += len(outcomes)
        for outcome in outcomes:
            left = self._outstanding.get(outcome.lease, 0) - 1
            if left > 0:
                self._outstanding[outcome.lease] = left
            else:
                self._outstanding.pop(outcome.lease, None)

    def _launch(self, item: Claimed) -> None:
        task = asyncio.create_task(self._deliver(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sending ---------------------------------------------------------------------------------

    async def _deliver(self, item: Claimed) -> None:
        attempted_at = utcnow()
        started = monotonic()
        if item.handler_status != HandlerStatus.ACTIVE:
            attempt = Attempt(error="handler disabled", refused=True)
        else:
            attempt = await self._send(item)
        duration_ms = int((monotonic() - started) * 1000)
        self._done.append(self._outcome(item, attempt, attempted_at, duration_ms))
        self._wake.set()

    async def _send(self, item: Claimed) -> Attempt:
        timestamp = int(time.time())
        try:
            if item.method == "GET":
                target = Target.of(with_query(item.url, item.payload))
                signed, body = target.query, b""
                headers = []
            else:
                target = Target.of(item.url)
                signed, body = item.payload, item.payload.encode("ascii")
                headers = [("Content-Type", "application/x-www-form-urlencoded")]
        except (ValueError, UnicodeError) as exc:
            return Attempt(error=f"invalid url ({type(exc).__name__})", refused=True)
        headers.append((EVENT_ID_HEADER, item.event_id))
        headers.append((SIGNATURE_HEADER, signature_header(item.secret, timestamp, signed)))
        try:
            async with asyncio.timeout(self.settings.webhook_timeout):
                answer = await self.client.request(item.method, target, headers, body)
            return Attempt(answer.status, retry_after=answer.headers.get("retry-after"))
        except DestinationRefused as exc:
            return Attempt(error=f"refused: {exc}", refused=True)
        except TimeoutError:
            return Attempt(error="timeout")
        except ConnectFailed as exc:
            return Attempt(error=f"connection failed: {exc}")
        except RequestError as exc:
            return Attempt(error=str(exc))
        except Exception as exc:  # a bug must not stop delivery; the attempt is retried
            log.exception("webhook event %s: unexpected error", item.event_id)
            return Attempt(error=f"internal error ({type(exc).__name__})")

    def _outcome(
        self, item: Claimed, attempt: Attempt, attempted_at: dt.datetime, duration_ms: int
    ) -> Recorded:
        code = attempt.status_code
        state = DeliveryState.FAILED
        next_at: dt.datetime | None = None
        disable = False
        note = ""
        if code is not None and 200 <= code < 300:
            state = DeliveryState.DELIVERED
        elif code == 410:
            disable = True
            note = ", handler disabled"
        elif attempt.refused or (code is not None and code < 500 and code != 429):
            note = ", not retried"
        else:
            retry_after = retry_after_seconds(attempt.retry_after, attempted_at)
            delay = self.policy.delay(item.attempts + 1, retry_after)
            candidate = utcnow() + dt.timedelta(seconds=delay)
            if candidate - item.raised_at <= dt.timedelta(seconds=self.policy.max_age):
                state, next_at = DeliveryState.PENDING, candidate
                note = f", retry in {delay:.0f} s" if delay >= 1 else f", retry in {delay:.2f} s"
            else:
                note = f", gave up after {item.attempts + 1} attempts"
        result = f"{code}" if code is not None else f"error {attempt.error}"
        log.info(
            "webhook event %s handler %d %s %s -> %s in %d ms%s",
            item.event_id,
            item.handler_id,
            item.method,
            shown_url(item.url),
            result,
            duration_ms,
            note,
        )
        return Recorded(
            delivery_id=item.id,
            lease=item.lease,
            handler_id=item.handler_id,
            number=item.attempts + 1,
            attempted_at=attempted_at,
            duration_ms=duration_ms,
            status_code=code,
            error=attempt.error[:200] if attempt.error else None,
            state=state,
            next_attempt_at=next_at,
            disable_handler=disable,
        )

    # -- upkeep ----------------------------------------------------------------------------------

    def _release(self, leases: list[str]) -> None:
        with self.database.write_connection() as connection:
            OutboxRepository(connection).release(leases)

    async def _maybe_prune(self) -> None:
        if monotonic() - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = monotonic()
        before = utcnow() - dt.timedelta(seconds=self.settings.webhook_retention)
        try:
            await asyncio.to_thread(self._prune, before)
        except Exception as exc:
            log.warning("webhook delivery: pruning failed (%s)", type(exc).__name__)

    def _prune(self, before: dt.datetime) -> None:
        with self.database.write_connection() as connection:
            OutboxRepository(connection).prune(before, PRUNE_BATCH)


RunningDelivery = DeliveryWorker


async def start_delivery(settings: Settings, database: Database) -> RunningDelivery:
    """Start the delivery worker on the running event loop; ``await worker.stop()`` ends it."""
    worker = DeliveryWorker(settings, database)
    await worker.start()
    return worker
