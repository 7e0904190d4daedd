"""The PBX's directory cache (``pbx/directory.py``) and the batched call-history writer
(``common/batch.py``), on SQLite and PostgreSQL.

A changed SIP password or a blocked extension applies to the very next REGISTER/INVITE after the
commit, whether the old answer was cached or not; a change committed by another process (another
``Database`` on the same URL) is seen as soon as its announcement arrives; a change no one
announces (SQL by hand) lasts at most the TTL; an INVITE from an address no trunk has needs no
trunk query, and a trunk added later is seen. History rows: one transaction per batch, a bad row
fails alone, ``stop`` writes what is queued.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select, update

from callgate.calls.models import CallRecord
from callgate.calls.service import CallHistoryService, FinishedCall
from callgate.common.batch import BatchWriter
from callgate.common.db import Database
from callgate.common.errors import InvalidInput
from callgate.identity.models import Status
from callgate.pbx.directory import DirectoryCache
from callgate.pbx.repository import DatabaseDirectory
from callgate.pbx.routing import InternalTarget, Router
from callgate.pbx.service import start_pbx
from callgate.pbx.trunks import TrunkService
from callgate.phones.models import PhoneSettings
from callgate.phones.service import PhoneService
from callgate.routing.models import Trunk
from callgate.services import Services
from callgate.sip.message import Request, Response
from callgate.sip.parser import parse
from tests.pbx.helpers import answer, register
from tests.pbx.test_calls_sip import Phone, credentials, invite
from tests.support.factories import World

OLD, NEW = "old-secret-1", "new-secret-2"


def run(main: Callable[[], Awaitable[None]], limit: float = 30) -> None:
    asyncio.run(asyncio.wait_for(main(), limit))


def cache_of(services: Services, *, ttl: float = 30, clock: Callable[[], float] = time.monotonic):
    database = services.database
    trunks = TrunkService(database, services.settings)
    router = Router(database, trunks)
    return DirectoryCache(DatabaseDirectory(database), router, trunks, ttl=ttl, clock=clock)


async def generation_moves(cache: DirectoryCache, before: int | None, limit: float = 5.0) -> None:
    """Until the cache's generation differs from ``before`` (another process's commit is
    announced asynchronously on PostgreSQL)."""
    end = time.monotonic() + limit
    while cache.generation() in (before, None):
        assert time.monotonic() < end, "the change was never announced"
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------- over SIP


def test_new_password_refuses_the_old_one_at_once(services: Services, world: World) -> None:
    services.phones.update_phone(world.ext101.id, password=OLD)
    user = f"{world.client.prefix}*101"

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        loop = asyncio.get_running_loop()
        transport, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        lookups = pbx.service.lookups
        assert lookups is not None and lookups.enabled

        async def ask(request: Request) -> Response:
            transport.sendto(bytes(request), pbx.address)
            return await phone.final(request.call_id, request.cseq.seq)

        async def registers(password: str, call_id: str) -> int:
            challenge = await ask(register(user=user, port=port, call_id=call_id))
            assert challenge.status == 401
            auth = answer(challenge, user=user, password=password)
            return (
                await ask(
                    register(user=user, port=port, call_id=call_id, cseq=2, authorization=auth)
                )
            ).status

        try:
            await generation_moves(lookups, None)  # PostgreSQL: the listener is connected
            assert await registers(OLD, "r1") == 200
            hits = lookups.hits
            assert await registers(OLD, "r2") == 200
            assert lookups.hits == hits + 1  # answered from memory
            services.phones.update_phone(world.ext101.id, password=NEW)
            assert await registers(OLD, "r3") == 403
            assert await registers(NEW, "r4") == 200
            # INVITE: the old password is refused too, the new one accepted (404: no such number)
            challenge = await ask(invite(user, port, number="999", call_id="i1"))
            refused = await ask(
                invite(
                    user,
                    port,
                    number="999",
                    call_id="i1",
                    cseq=2,
                    authorization=credentials(challenge, user, OLD, number="999"),
                )
            )
            assert refused.status == 403
            challenge = await ask(invite(user, port, number="999", call_id="i2"))
            accepted = await ask(
                invite(
                    user,
                    port,
                    number="999",
                    call_id="i2",
                    cseq=2,
                    authorization=credentials(challenge, user, NEW, number="999"),
                )
            )
            assert accepted.status == 404
        finally:
            transport.close()
            await pbx.stop()

    run(main)


def test_blocking_a_cached_extension_refuses_its_next_invite(
    services: Services, world: World
) -> None:
    services.phones.update_phone(world.ext101.id, password=OLD)
    user = f"{world.client.prefix}*101"

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        loop = asyncio.get_running_loop()
        transport, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]

        async def status(call_id: str) -> Response:
            transport.sendto(bytes(invite(user, port, number="999", call_id=call_id)), pbx.address)
            challenge = await phone.final(call_id, 1)
            auth = credentials(challenge, user, OLD, number="999")
            request = invite(user, port, number="999", call_id=call_id, cseq=2, authorization=auth)
            transport.sendto(bytes(request), pbx.address)
            return await phone.final(call_id, 2)

        try:
            assert pbx.service.lookups is not None
            await generation_moves(pbx.service.lookups, None)
            assert (await status("a")).status == 404
            assert (await status("b")).status == 404  # cached by now
            services.identity.update_extension(world.ext101.id, status=Status.BLOCKED)
            blocked = await status("c")
            assert blocked.status == 403 and "Blocked" in blocked.reason
            services.identity.update_extension(world.ext101.id, status=Status.ACTIVE)
            assert (await status("d")).status == 404
        finally:
            transport.close()
            await pbx.stop()

    run(main)


# ---------------------------------------------------------------------- the cache itself


def test_answers_come_from_memory_until_a_change_is_committed(
    services: Services, world: World
) -> None:
    services.phones.update_phone(world.ext101.id, password=OLD)
    user = f"{world.client.prefix}*101"
    cache = cache_of(services)

    async def main() -> None:
        await generation_moves(cache, None)
        first = await cache.account(user)
        assert first is not None and not first.blocked
        # the account's query brought its extension along: no second read for the caller
        misses = cache.misses
        caller = await cache.extension(first.extension_id)
        assert isinstance(caller, InternalTarget) and caller.party.number == "101"
        assert await cache.account(user) == first
        assert cache.misses == misses
        # an unknown number is cached as unknown, until an extension of that name is created
        assert await cache.resolve(world.client.id, "555") is None
        assert await cache.resolve(world.client.id, "555") is None
        assert cache.misses == misses + 1
        services.identity.create_extension(world.client.id, "555")
        found = await cache.resolve(world.client.id, "555")
        assert isinstance(found, InternalTarget) and found.party.number == "555"
        # an incoming-call rule (a plain INSERT) is seen at once
        services.phones.update_rule(world.ext102.id, ring_seconds=7)
        target = await cache.resolve(world.client.id, "102")
        assert isinstance(target, InternalTarget) and target.rule.ring_seconds == 7
        # removing the password: the account is gone
        services.phones.update_phone(world.ext101.id, password=None)
        assert await cache.account(user) is None

    run(main)


def test_a_change_by_another_process_is_seen_once_announced(
    services: Services, world: World
) -> None:
    services.phones.update_phone(world.ext101.id, password=OLD)
    user = f"{world.client.prefix}*101"
    cache = cache_of(services)
    other = Database(services.database.url)  # another process's connection pool and events
    try:

        async def main() -> None:
            await generation_moves(cache, None)  # PostgreSQL: the listener is connected
            old = await cache.account(user)
            assert old is not None
            before = cache.generation()
            PhoneService(other, services.settings).update_phone(world.ext101.id, password=NEW)
            await generation_moves(cache, before)
            new = await cache.account(user)
            assert new is not None and new.ha1 != old.ha1

        run(main)
    finally:
        other.dispose()


def test_a_change_no_one_announces_lasts_at_most_the_ttl(services: Services, world: World) -> None:
    services.phones.update_phone(world.ext101.id, password=OLD)
    user = f"{world.client.prefix}*101"
    now = [1000.0]
    cache = cache_of(services, ttl=30, clock=lambda: now[0])
    database = services.database

    async def main() -> None:
        await generation_moves(cache, None)
        old = await cache.account(user)
        assert old is not None
        # SQL by hand on a raw connection, bypassing the announcement
        before = cache.generation()
        raw = database.engine.raw_connection()
        try:
            cursor = raw.cursor()
            statement = (
                update(PhoneSettings)
                .where(PhoneSettings.extension_id == world.ext101.id)
                .values(ha1_md5="0" * 32)
                .compile(dialect=database.engine.dialect, compile_kwargs={"literal_binds": True})
            )
            cursor.execute(str(statement))
            raw.commit()
        finally:
            raw.close()
        assert cache.generation() == before
        assert await cache.account(user) == old  # stale, within the TTL
        now[0] += 31
        fresh = await cache.account(user)
        assert fresh is not None and fresh.ha1.md5 == "0" * 32

    run(main)


def test_a_phone_invite_needs_no_trunk_query_and_new_trunks_are_seen(
    services: Services, world: World
) -> None:
    cache = cache_of(services)
    request = parse(bytes(invite("x*1", 5999, number="4930123", call_id="t")))
    assert isinstance(request, Request)
    phone = ("127.0.0.1", 5999)

    async def main() -> None:
        await generation_moves(cache, None)
        assert await cache.inbound(phone, request) is None
        misses = cache.misses
        assert await cache.inbound(phone, request) is None
        assert cache.misses == misses  # answered from the set of trunk addresses
        with services.database.write() as session:
            session.add(
                Trunk(client_id=world.client.id, name="provider", host="127.0.0.1", port=5999)
            )
        inbound = await cache.inbound(phone, request)
        assert inbound is not None and inbound.client_id == world.client.id

    run(main)


def test_without_a_ttl_nothing_is_cached(services: Services, world: World) -> None:
    services.phones.update_phone(world.ext101.id, password=OLD)
    cache = cache_of(services, ttl=0)
    user = f"{world.client.prefix}*101"

    async def main() -> None:
        assert await cache.account(user) is not None
        assert await cache.account(user) is not None
        assert await cache.resolve(world.client.id, "102") is not None
        assert cache.hits == 0 and cache.watch is None

    run(main)


# ---------------------------------------------------------------------- history in batches


def finished(world: World, n: int, *, extension_id: int | None = None) -> FinishedCall:
    start = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    return FinishedCall(
        client_id=world.client.id,
        flow="internal",
        init_time=start,
        hangup_time=start + dt.timedelta(seconds=5),
        result="answered",
        answer_time=start + dt.timedelta(seconds=1),
        extension_id=extension_id if extension_id is not None else world.ext101.id,
        from_username="101",
        to_username="102",
        call_uuid=f"batch-{world.client.id}-{n}",
    )


def rows(services: Services, world: World) -> list[str]:
    with services.database.read_connection() as connection:
        found = connection.execute(
            select(CallRecord.call_uuid).where(CallRecord.client_id == world.client.id)
        )
        return sorted(found.scalars())


def test_history_rows_are_written_in_batches_and_a_bad_row_fails_alone(
    services: Services, world: World
) -> None:
    history = CallHistoryService(services.database)
    calls: list[list[FinishedCall]] = []

    def write_batch(items: list[FinishedCall]) -> None:
        calls.append(items)
        history.record_many(items)

    writer = BatchWriter(write_batch, history.record, name="test history", batch=50)

    async def main() -> None:
        good = [finished(world, n) for n in range(120)]
        bad = finished(world, 500, extension_id=world.other_ext.id)  # another client's
        results = await asyncio.gather(
            *(writer.submit(call) for call in [*good[:60], bad, *good[60:]]),
            return_exceptions=True,
        )
        errors = [r for r in results if r is not None]
        assert len(errors) == 1 and isinstance(errors[0], InvalidInput)
        # 121 rows in batches of at most 50: a handful of transactions, not one per row
        assert all(len(batch) <= 50 for batch in calls) and 3 <= len(calls) <= 5
        assert (writer.written, writer.failed) == (120, 1)
        # a duplicate fails alone too (its batch is then written row by row)
        again = await asyncio.gather(
            writer.submit(good[0]), writer.submit(finished(world, 200)), return_exceptions=True
        )
        assert again[1] is None and again[0] is not None
        await writer.stop()
        with pytest.raises(RuntimeError):
            await writer.submit(finished(world, 300))

    run(main)
    assert rows(services, world) == sorted(
        [f"batch-{world.client.id}-{n}" for n in range(120)] + [f"batch-{world.client.id}-200"]
    )


def test_stop_writes_what_is_queued(services: Services, world: World) -> None:
    history = CallHistoryService(services.database)
    writer = BatchWriter(history.record_many, history.record, name="test history", batch=10)

    async def main() -> None:
        waiting = [asyncio.ensure_future(writer.submit(finished(world, n))) for n in range(35)]
        await asyncio.sleep(0)  # queued, nothing written yet
        await writer.stop()
        assert all(task.done() and task.exception() is None for task in waiting)

    run(main)
    with services.database.read_connection() as connection:
        count = connection.execute(
            select(func.count())
            .select_from(CallRecord)
            .where(CallRecord.client_id == world.client.id)
        ).scalar_one()
    assert count == 35


def test_linger_gathers_rows_that_arrive_one_by_one(services: Services, world: World) -> None:
    history = CallHistoryService(services.database)
    sizes: list[int] = []

    def write_batch(items: list[FinishedCall]) -> None:
        sizes.append(len(items))
        history.record_many(items)

    writer = BatchWriter(write_batch, history.record, name="test history", linger=1.0)

    async def main() -> None:
        await writer.submit(finished(world, 99))  # the first after a quiet spell: at once
        waiting = []
        for n in range(5):  # then 5 rows 10 ms apart: within one linger
            waiting.append(asyncio.ensure_future(writer.submit(finished(world, n))))
            await asyncio.sleep(0.01)
        await asyncio.gather(*waiting)
        await writer.stop()

    run(main)
    assert sizes == [1, 5]
    assert len(rows(services, world)) == 6
    with pytest.raises(ValueError, match="linger"):
        BatchWriter(write_batch, history.record, name="x", linger=5)
