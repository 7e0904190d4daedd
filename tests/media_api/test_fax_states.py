"""The fax job state machine: the transition table itself, and the service methods the fax
sender will call (``next_due_job``, ``mark_*``) moving jobs only through it."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from callgate.common.clock import utcnow
from callgate.fax.models import FaxJob
from callgate.fax.states import (
    TRANSITIONS,
    FaxEvent,
    FaxState,
    IllegalTransition,
    is_active,
    next_state,
)
from callgate.services import Services
from tests.support.factories import World

S, E = FaxState, FaxEvent
LEGAL = {
    (S.QUEUED, E.DIAL): S.DIALING,
    (S.DIALING, E.CONNECT): S.SENDING,
    (S.SENDING, E.SUCCEED): S.SENT,
    (S.QUEUED, E.FAIL): S.FAILED,
    (S.DIALING, E.FAIL): S.FAILED,
    (S.SENDING, E.FAIL): S.FAILED,
    (S.QUEUED, E.CANCEL): S.CANCELLED,
    (S.DIALING, E.CANCEL): S.CANCELLED,
    (S.SENDING, E.CANCEL): S.CANCELLED,
    (S.FAILED, E.RETRY): S.QUEUED,
    (S.CANCELLED, E.RETRY): S.QUEUED,
    (S.FAILED, E.REQUEUE): S.QUEUED,
}


def test_the_table_is_exactly_the_documented_machine() -> None:
    assert TRANSITIONS == LEGAL
    for state, event in itertools.product(FaxState, FaxEvent):
        if (state, event) in LEGAL:
            assert next_state(state, event) is LEGAL[(state, event)]
        else:
            with pytest.raises(IllegalTransition) as refused:
                next_state(state, event)
            assert refused.value.status == "conflict"
            assert str(refused.value).startswith(f"A {state} fax job cannot ")
    assert [s for s in FaxState if is_active(s)] == [S.QUEUED, S.DIALING, S.SENDING]


def _queue(services: Services, world: World, dst_num: str = "555") -> FaxJob:
    plan = services.fax.plan_job_upload(world.ext101.id)
    document = b"%PDF-1.4\n%%EOF\n"
    services.files.write_bytes(plan.relative, [document])
    return services.fax.create_job(
        plan, world.ext101.id, dst_num=dst_num, filename="a.pdf", size=len(document)
    )


def test_the_sender_takes_the_oldest_queued_job(services: Services, world: World) -> None:
    fax = services.fax
    assert fax.next_due_job() is None
    first, second = _queue(services, world, "1"), _queue(services, world, "2")
    due = fax.next_due_job()
    assert due is not None and due.id == first.id

    dialing = fax.mark_dialing(first.id)
    assert (dialing.state, dialing.attempts) == ("dialing", 1)
    # A second sender that picked the same job loses the race cleanly.
    with pytest.raises(IllegalTransition):
        fax.mark_dialing(first.id)
    due = fax.next_due_job()
    assert due is not None and due.id == second.id
    sending = fax.mark_sending(first.id, pages=3)
    assert (sending.state, sending.pages) == ("sending", 3)
    sent = fax.mark_sent(first.id, pages_sent=3)
    assert (sent.state, sent.pages_sent) == ("sent", 3)
    with pytest.raises(IllegalTransition):
        fax.mark_failed(first.id, "too late")


def test_failed_jobs_come_back_until_attempts_run_out(services: Services, world: World) -> None:
    fax = services.fax
    services.settings.fax_retry_delay = 60
    job = _queue(services, world)
    start = utcnow()
    for attempt in (1, 2):
        assert fax.mark_dialing(job.id).attempts == attempt
        failed = fax.mark_failed(job.id, "no answer", pages_sent=0)
        assert (failed.state, failed.reason) == ("failed", "no answer")
        assert failed.next_attempt_at is not None
        # The delay doubles with each attempt: 60 s, then 120 s.
        delay = failed.next_attempt_at - start
        assert dt.timedelta(seconds=60 * attempt) <= delay < dt.timedelta(seconds=60 * attempt + 30)
        assert fax.next_due_job(now=start) is None  # not yet
        due = fax.next_due_job(now=failed.next_attempt_at)
        assert due is not None and (due.id, due.state) == (job.id, "queued")
    fax.mark_dialing(job.id)
    last = fax.mark_failed(job.id, "no answer")
    assert (last.attempts, last.max_attempts, last.next_attempt_at) == (3, 3, None)
    assert fax.next_due_job(now=start + dt.timedelta(days=30)) is None
    assert fax.get_job(world.ext101.id, job.id).state == "failed"

    # Only a retry through the API queues it again, with the attempts counted from zero.
    retried = fax.retry(world.ext101.id, job.id)
    assert (retried.state, retried.attempts, retried.reason) == ("queued", 0, "")


def test_a_cancelled_job_is_not_sent(services: Services, world: World) -> None:
    fax = services.fax
    job = _queue(services, world)
    fax.mark_dialing(job.id)
    cancelled = fax.cancel(world.ext101.id, job.id)
    assert (cancelled.state, cancelled.reason) == ("cancelled", "Cancelled.")
    assert fax.next_due_job() is None
    with pytest.raises(IllegalTransition):
        fax.mark_sending(job.id)
