"""One writer task that stores items in batches: one transaction for what queued meanwhile.

:class:`BatchWriter` is for rows that many coroutines produce and each wants to know stored (the
call engine's history rows): ``await writer.submit(item)`` queues the item and returns once the
batch holding it is committed (or raises what storing it raised). The writer task takes up to
``batch`` queued items at a time and hands them to ``write_batch`` (blocking, in a worker thread:
one transaction). If the batch fails, its items are written one by one with ``write_one``, so a
bad item fails alone and the others are stored. Items submitted while a batch is written go into
the next one: under load, one thread hop and one commit serve many items. With ``linger``, a
busy writer (one that wrote a batch in the last second) waits that long (at most 1 s) for more
items before writing; after a quiet spell the first item is written at once.

``stop`` writes what is queued (within ``stop_deadline`` seconds) and ends the task. A coroutine
that stops waiting (cancelled) does not withdraw its item: it is still written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("callgate")

T = TypeVar("T")

BATCH = 200
STOP_DEADLINE = 30.0
MAX_LINGER = 1.0
# The writer lingers only when its previous batch is younger than this: the first item after a
# quiet spell is written at once.
BUSY_WINDOW = 1.0


class BatchWriter(Generic[T]):
    def __init__(
        self,
        write_batch: Callable[[list[T]], object],
        write_one: Callable[[T], object],
        *,
        name: str,
        batch: int = BATCH,
        linger: float = 0.0,
        stop_deadline: float = STOP_DEADLINE,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if not 0 <= linger <= MAX_LINGER:
            raise ValueError(f"linger must be between 0 and {MAX_LINGER} seconds")
        self.linger = linger
        self.write_batch = write_batch
        self.write_one = write_one
        self.name = name
        self.batch = batch
        self.stop_deadline = stop_deadline
        self._queue: deque[tuple[T, asyncio.Future[None]]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # what happened so far, for tests and metrics
        self.batches = 0
        self.written = 0
        self.failed = 0

    async def submit(self, item: T) -> None:
        """Queue ``item``; return once it is committed, or raise why it could not be."""
        if self._stopping:
            raise RuntimeError(f"{self.name}: the writer has stopped")
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run(), name=f"{self.name} writer")
        assert self._wakeup is not None
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((item, done))
        self._wakeup.set()
        await done

    async def stop(self) -> None:
        """Write what is queued, then end the writer task (bounded by ``stop_deadline``)."""
        self._stopping = True
        task = self._task
        if task is None:
            return
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.stop_deadline)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        if self._queue:
            log.error("%s: stopped with %d items not written", self.name, len(self._queue))
            while self._queue:
                _, done = self._queue.popleft()
                if not done.done():
                    done.set_exception(RuntimeError(f"{self.name}: stopped before writing"))

    async def _run(self) -> None:
        assert self._wakeup is not None
        lingered = False
        loop = asyncio.get_running_loop()
        last_batch = -BUSY_WINDOW
        while True:
            if not self._queue:
                if self._stopping:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            now = loop.time()
            if (
                self.linger
                and not lingered
                and not self._stopping
                and len(self._queue) < self.batch
                and now - last_batch < BUSY_WINDOW
            ):
                lingered = True
                await asyncio.sleep(self.linger)  # busy: let a batch gather
                continue
            lingered = False
            last_batch = now
            taken = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            items = [item for item, _ in taken]
            try:
                errors = await self._write(items)
            except asyncio.CancelledError:  # stop() gave up waiting: nobody may wait forever
                for _, done in taken:
                    if not done.done():
                        done.set_exception(RuntimeError(f"{self.name}: stopped while writing"))
                raise
            self.batches += 1
            for (_, done), error in zip(taken, errors, strict=True):
                if error is None:
                    self.written += 1
                else:
                    self.failed += 1
                if done.done():  # the submitter stopped waiting
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    async def _write(self, items: list[T]) -> list[Exception | None]:
        try:
            await asyncio.to_thread(self.write_batch, items)
        except Exception as exc:
            log.warning(
                "%s: a batch of %d failed (%s); writing its items one by one",
                self.name,
                len(items),
                type(exc).__name__,
            )
            return await asyncio.to_thread(self._one_by_one, items)
        return [None] * len(items)

    def _one_by_one(self, items: list[T]) -> list[Exception | None]:
        errors: list[Exception | None] = []
        for item in items:
            try:
                self.write_one(item)
            except Exception as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors
