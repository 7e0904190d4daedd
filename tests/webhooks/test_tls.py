"""https:// handlers: the certificate is verified against the host name of the URL while the
connection goes to the address that was checked."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

from callgate.events.client import WebhookClient
from callgate.events.delivery import DeliveryWorker
from callgate.events.sink import OutboxSink
from callgate.services import Services
from tests.support.factories import World
from tests.webhooks.helpers import add_handler, attempts, deliveries, event, fast
from tests.webhooks.receiver import Receiver, wait_until_async


def _certificate(folder: Path) -> tuple[str, str]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


def _deliver_one(services: Services, world: World, client: WebhookClient | None) -> None:
    settings = fast(services.settings)

    async def main() -> None:
        sink = OutboxSink(services.database, settings)
        await sink.start()
        worker = DeliveryWorker(settings, services.database, client=client)
        await worker.start()
        try:
            sink.emit(event(world.ext101))
            await wait_until_async(lambda: worker.attempts >= 1, 10, "the attempt")
        finally:
            await sink.stop()
            await worker.stop()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_trusted_certificate_is_accepted(
    services: Services, world: World, tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    with Receiver(certfile=cert, keyfile=key) as receiver:
        add_handler(services, receiver.url(host="localhost"), extension=world.ext101)
        trusting = WebhookClient(
            allow_private=True,
            connect_timeout=2,
            ssl_context=ssl.create_default_context(cafile=cert),
        )
        _deliver_one(services, world, trusting)
        assert len(receiver.received) == 1
    assert deliveries(services)[0].state == "delivered"


def test_an_untrusted_certificate_is_refused(
    services: Services, world: World, tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    with Receiver(certfile=cert, keyfile=key) as receiver:
        add_handler(services, receiver.url(host="localhost"), extension=world.ext101)
        _deliver_one(services, world, None)  # the system's trust store
        assert receiver.received == []
    first = attempts(services)[0]
    assert first.error is not None and first.error.startswith("connection failed: TLS")
    assert first.next_retry_at is not None  # retried: the receiver may fix its certificate
