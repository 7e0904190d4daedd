"""``GET /healthz``: answers ``{"status": "ok"}`` while the process serves HTTP.

It touches no database on purpose: it says the worker is alive, and the benchmark uses it as the
cost of a bare JSON answer through the same server, middleware and event loop as the API.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
