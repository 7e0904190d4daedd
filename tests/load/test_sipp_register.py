"""Load: 200 phones register with digest authentication through SIPp, none fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callgate.pbx.service import start_pbx
from callgate.services import Services
from tests.load.runner import AVAILABLE, SCENARIOS, run_sipp, write_users
from tests.support.factories import World

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs sipp (Debian package sip-tester)")

PHONES = 200
PASSWORD = "load-test-pass-1"


def _phones(services: Services, world: World, count: int) -> list[tuple[str, str, str]]:
    """``count`` extensions 1000… of client A with a SIP password: (name, user, password)."""
    users = []
    for number in range(1000, 1000 + count):
        extension = services.identity.create_extension(world.client.id, str(number))
        services.phones.update_phone(extension.id, password=PASSWORD)
        users.append((str(number), f"{world.client.prefix}*{number}", PASSWORD))
    return users


def test_200_phones_register_with_digest_and_none_fails(
    services: Services, world: World, tmp_path: Path
) -> None:
    users = _phones(services, world, PHONES)
    inf = write_users(tmp_path / "users.csv", users)

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        host, port = pbx.address
        try:
            result = await run_sipp(
                [
                    f"{host}:{port}",
                    "-sf",
                    str(SCENARIOS / "register.xml"),
                    "-inf",
                    str(inf),
                    "-m",
                    str(PHONES),
                    "-r",
                    "50",
                    "-l",
                    str(PHONES),
                ],
                tmp_path / "sipp",
                limit=60,
            )
            assert result.status == 0, result.explain()
            assert (result.successful, result.failed) == (PHONES, 0), result.explain()
            now = pbx.service.clock()
            registered = {aor for aor, _ in pbx.service.registrar.bindings}
            assert registered == {user for _, user, _ in users}
            for _, user, _ in users:
                [binding] = pbx.service.registrar.bindings.lookup(user, now)
                assert binding.source[0] == "127.0.0.1" and binding.transport == "udp"
                assert binding.contact.startswith(f"sip:{user}@127.0.0.1:")
        finally:
            await pbx.stop()

    asyncio.run(asyncio.wait_for(main(), timeout=120))
