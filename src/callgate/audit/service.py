"""Writing audit events: one row in the database and one log line each."""

from __future__ import annotations

import logging

from sqlalchemy import insert
from sqlalchemy.orm import Session

from callgate.audit.models import AuditEvent

log = logging.getLogger("callgate.audit")
_INSERT_EVENT = insert(AuditEvent.__table__)  # type: ignore[arg-type]


def record(
    session: Session,
    kind: str,
    *,
    user_id: int | None = None,
    app_id: str | None = None,
    address: str | None = None,
    detail: str = "",
) -> None:
    """Add an audit event to the unit of work. ``detail`` must never hold a secret."""
    # A Core INSERT in the unit of work's transaction: the ORM flush of one row costs more than
    # the statement (it is on the token endpoint's path). ``at`` gets its column default.
    session.connection().execute(
        _INSERT_EVENT,
        {"kind": kind, "user_id": user_id, "app_id": app_id, "address": address, "detail": detail},
    )
    log.info("audit %s user=%s app=%s addr=%s %s", kind, user_id, app_id, address, detail)
