"""Drive Debian's packaged Chromium (``/usr/bin/chromium``) with Playwright.

No Playwright-managed browser is downloaded (``playwright install`` is never run): the tests use
the ``chromium`` Debian package, which ``scripts/system-deps.sh`` installs.  Playwright 1.65 talks
to Debian 12's Chromium 156 over the DevTools protocol without any environment variable.

``/usr/bin/chromium`` is Debian's shell wrapper; it sources ``/etc/chromium.d/*`` and then runs
``/usr/lib/chromium/chromium``.  Playwright itself already adds ``--disable-dev-shm-usage`` and,
unless ``chromium_sandbox=True``, ``--no-sandbox`` (required when running as root, as CI does);
``--no-sandbox`` is repeated below so the intent is explicit.
"""

from __future__ import annotations

import os
from typing import Final

from playwright.sync_api import Browser, Playwright

CHROMIUM_PATH: Final = "/usr/bin/chromium"

CHROMIUM_ARGS: Final[tuple[str, ...]] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_available() -> bool:
    """Tell whether the Debian Chromium binary is installed (for ``pytest.skip``)."""
    return os.access(CHROMIUM_PATH, os.X_OK)


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch Debian's headless Chromium through Playwright's sync API."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM_PATH,
        headless=True,
        args=list(CHROMIUM_ARGS),
    )
