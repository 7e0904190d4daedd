"""The call engine's :class:`~callgate.calls.live.CallControl` in its own process.

:class:`LocalCallControl` is what the API (directly, or through the control channel of
:mod:`callgate.pbx.channel`) asks of the engine. It owns the rules that are the same whoever
runs the calls:

* scope — a client sees only its own calls, an extension only the calls it takes part in; a call
  outside the scope is answered exactly like a call that does not exist (``NotFound``), so one
  client cannot probe for another's ``call_api_id`` values;
* state — ``hold`` on a held call and ``offhold`` on a call that is not held are ``Conflict``;
  ``transfer``/``hold``/``offhold`` on a call not answered yet are ``InvalidInput``;
  ``transfer`` needs a destination;
* translation — the engine signals "no such call" with ``KeyError`` (the call may end between
  the scope check and the action) and a step its state machine refuses with ``ValueError``
  (e.g. :class:`~callgate.pbx.call.InvalidTransition`); both become domain errors here;
* one log line per action on ``callgate.sip``:
  ``call control hold 5f3a… by client 7 ext 12: ok`` (or the error's sentence).

The engine (:class:`EngineControl`) does the SIP and media work; its methods take the call's
``call_api_id`` and act at once (``originate`` returns once the first phones ring).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from callgate.calls.live import CallAction, CallbackRequest, LiveCall, Originated
from callgate.common.errors import Conflict, DomainError, InvalidInput, NotFound

log = logging.getLogger("callgate.sip")

ACTIVE_STATES = frozenset({"answered", "held"})  # LiveCall.state values an action applies to


class EngineControl(Protocol):
    """What :class:`LocalCallControl` needs of the B2BUA (``callgate.pbx.b2bua.CallEngine``)."""

    def live_calls(self) -> list[LiveCall]:
        """Every call in progress (from memory, no I/O)."""
        ...

    async def originate(self, request: CallbackRequest) -> Originated:
        """Start a callback call; ``InvalidInput`` for numbers that route nowhere."""
        ...

    async def transfer(
        self, call_api_id: str, number: str, *, by_extension_id: int | None = None
    ) -> None:
        """Blind transfer, as if ``by_extension_id`` had sent a REFER: its leg is hung up and
        the other party is connected to ``number``. ``None`` (a client-level request) acts for
        the callee: the caller is moved."""
        ...

    async def hold(self, call_api_id: str, *, by_extension_id: int | None = None) -> None:
        """The party other than ``by_extension_id`` hears music on hold and the acting party is
        muted (``None``: the callee holds, the caller hears the music)."""
        ...

    async def offhold(self, call_api_id: str, *, by_extension_id: int | None = None) -> None:
        """Back to a two-way bridge."""
        ...

    async def hangup(self, call_api_id: str) -> None: ...


class LocalCallControl:
    """:class:`~callgate.calls.live.CallControl` over the engine of this process."""

    def __init__(self, engine: EngineControl) -> None:
        self.engine = engine

    async def current_calls(self, client_id: int, extension_id: int | None) -> list[LiveCall]:
        return [
            call for call in self.engine.live_calls() if _in_scope(call, client_id, extension_id)
        ]

    async def originate(self, request: CallbackRequest) -> Originated:
        if not request.src_num:
            error: DomainError = InvalidInput(
                "A callback needs at least one number to ring first.", {"src_num": "empty"}
            )
            _log("callback", "-", request.client_id, request.extension_id, error.message)
            raise error
        try:
            started = await self.engine.originate(request)
        except Exception as exc:
            translated = _translate(exc, f"The callback cannot be started: {exc}")
            _log("callback", "-", request.client_id, request.extension_id, _what(translated, exc))
            if translated is None or translated is exc:
                raise
            raise translated from exc
        _log("callback", started.call_api_id, request.client_id, request.extension_id, "ok")
        return started

    async def act(
        self,
        client_id: int,
        extension_id: int | None,
        call_api_id: str,
        action: CallAction,
        send_dst: str | None = None,
    ) -> None:
        async def run() -> None:
            call = self._find(client_id, extension_id, call_api_id)
            if call.state not in ACTIVE_STATES:
                raise InvalidInput(
                    f"The call {call_api_id} is {call.state}; it can be put on hold or "
                    "transferred once it is answered."
                )
            if action is CallAction.TRANSFER:
                number = (send_dst or "").strip()
                if not number:
                    raise InvalidInput(
                        "A transfer needs send_dst, the number to transfer the call to.",
                        {"send_dst": "missing"},
                    )
                await self.engine.transfer(call_api_id, number, by_extension_id=extension_id)
            elif action is CallAction.HOLD:
                if call.state == "held":
                    raise Conflict(f"The call {call_api_id} is already on hold.")
                await self.engine.hold(call_api_id, by_extension_id=extension_id)
            else:
                if call.state != "held":
                    raise Conflict(f"The call {call_api_id} is not on hold.")
                await self.engine.offhold(call_api_id, by_extension_id=extension_id)

        await self._logged(str(action), call_api_id, client_id, extension_id, run)

    async def hangup(self, client_id: int, extension_id: int | None, call_api_id: str) -> None:
        async def run() -> None:
            self._find(client_id, extension_id, call_api_id)
            await self.engine.hangup(call_api_id)

        await self._logged("hangup", call_api_id, client_id, extension_id, run)

    def _find(self, client_id: int, extension_id: int | None, call_api_id: str) -> LiveCall:
        for call in self.engine.live_calls():
            if call.call_api_id == call_api_id and _in_scope(call, client_id, extension_id):
                return call
        raise _not_found(call_api_id, client_id, extension_id)

    async def _logged(
        self,
        action: str,
        call_api_id: str,
        client_id: int,
        extension_id: int | None,
        run: Callable[[], Awaitable[None]],
    ) -> None:
        try:
            await run()
        except Exception as exc:
            translated = _translate(
                exc,
                f"Not possible on call {call_api_id} now: {exc}",
                _not_found(call_api_id, client_id, extension_id),
            )
            _log(action, call_api_id, client_id, extension_id, _what(translated, exc))
            if translated is None or translated is exc:
                raise
            raise translated from exc
        _log(action, call_api_id, client_id, extension_id, "ok")


def _in_scope(call: LiveCall, client_id: int, extension_id: int | None) -> bool:
    if call.client_id != client_id:
        return False
    if extension_id is None:
        return True
    return extension_id in call.extension_ids or call.extension_id == extension_id


def _not_found(call_api_id: str, client_id: int, extension_id: int | None) -> NotFound:
    if extension_id is None:
        return NotFound(f"There is no call {call_api_id} in progress for client {client_id}.")
    return NotFound(f"There is no call {call_api_id} in progress for extension {extension_id}.")


def _translate(exc: Exception, invalid: str, gone: DomainError | None = None) -> DomainError | None:
    """The domain error an engine exception stands for; None for anything else (a bug: it
    propagates as it is, and the API answers 500)."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, KeyError) and gone is not None:
        return gone  # the call ended between the scope check and the action
    if isinstance(exc, (KeyError, ValueError)):
        return InvalidInput(invalid)
    return None


def _what(error: DomainError | None, exc: Exception) -> str:
    return error.message if error is not None else f"internal error {type(exc).__name__}"


def _log(
    action: str, call_api_id: str, client_id: int, extension_id: int | None, what: str
) -> None:
    log.info(
        "call control %s %s by client %d ext %s: %s",
        action,
        call_api_id,
        client_id,
        extension_id if extension_id is not None else "-",
        what,
    )
