"""Load: 500 authenticated calls at 50 calls/s from SIPp through Callgate to a SIPp callee.

Caller: SIPp as extension 101 (INVITE, 407, INVITE with digest credentials, 100/180/200, ACK,
1 s of call, BYE). Callee: extension 102 bound (without a REGISTER) to a SIPp UAS that answers
200 *before* 180 and advertises ``transport=UDP`` in upper case in its Contact. Every call must
succeed on both SIPp sides and leave one call-history row.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callgate.calls.models import CallRecord
from callgate.pbx.registrar import Binding
from callgate.pbx.service import start_pbx
from callgate.services import Services
from tests.load.runner import AVAILABLE, SCENARIOS, SippServer, run_sipp, write_users
from tests.support.factories import World

ENGINE = importlib.util.find_spec("callgate.pbx.b2bua") is not None

pytestmark = [
    pytest.mark.skipif(not AVAILABLE, reason="needs sipp (Debian package sip-tester)"),
    pytest.mark.skipif(
        not ENGINE,
        reason="blocked: the B2BUA (callgate.pbx.b2bua) does not exist yet, INVITE gets 480",
    ),
]

CALLS = 500
RATE = 50
PASSWORD = "load-test-pass-1"


def _history_count(services: Services, client_id: int) -> int:
    with services.database.read_connection() as connection:
        query = select(func.count()).select_from(CallRecord)
        return int(connection.execute(query.where(CallRecord.client_id == client_id)).scalar_one())


def test_500_authenticated_calls_at_50_per_second_all_succeed(
    services: Services, world: World, tmp_path: Path
) -> None:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    services.phones.update_phone(world.ext102.id, password=PASSWORD)
    caller = f"{world.client.prefix}*101"
    callee = f"{world.client.prefix}*102"
    inf = write_users(tmp_path / "users.csv", [("101", caller, PASSWORD)])

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        host, port = pbx.address
        uas = SippServer(SCENARIOS / "uas_late180.xml", tmp_path / "uas", ["-m", str(CALLS)])
        try:
            await uas.start()
            # a phone registered from where the UAS listens, its Contact in upper case
            pbx.service.registrar.bindings.put(
                callee,
                Binding(
                    f"sip:{callee}@127.0.0.1:{uas.port};transport=UDP",
                    ("127.0.0.1", uas.port),
                    "udp",
                    pbx.service.clock() + 3600,
                    "load-binding",
                    1,
                ),
            )
            result = await run_sipp(
                [
                    f"{host}:{port}",
                    "-sf",
                    str(SCENARIOS / "uac_auth.xml"),
                    "-inf",
                    str(inf),
                    "-s",
                    "102",
                    "-m",
                    str(CALLS),
                    "-r",
                    str(RATE),
                    "-l",
                    "300",
                    "-d",
                    "1000",
                ],
                tmp_path / "uac",
                limit=90,
            )
            callee_side = await uas.stop(grace=10)
            assert result.status == 0, result.explain()
            assert (result.successful, result.failed) == (CALLS, 0), result.explain()
            assert (callee_side.successful, callee_side.failed) == (CALLS, 0), callee_side.explain()
            # history rows are written in a worker thread as each call ends: poll, bounded
            deadline = time.monotonic() + 30
            count = await asyncio.to_thread(_history_count, services, world.client.id)
            while count < CALLS and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                count = await asyncio.to_thread(_history_count, services, world.client.id)
            assert count == CALLS
        finally:
            await uas.stop()
            await pbx.stop()

    asyncio.run(asyncio.wait_for(main(), timeout=240))
    with services.database.read_connection() as connection:
        rows = connection.execute(
            select(
                CallRecord.flow,
                CallRecord.result,
                CallRecord.from_username,
                CallRecord.to_username,
                CallRecord.extension_id,
            ).where(CallRecord.client_id == world.client.id)
        ).all()
    assert len(rows) == CALLS
    assert {tuple(row) for row in rows} == {("internal", "answered", "101", "102", world.ext101.id)}
