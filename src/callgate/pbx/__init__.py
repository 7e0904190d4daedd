"""The PBX: Callgate's SIP endpoint and what runs on it (registrar, call engine, trunks).

``callgate.sip`` is the sans-I/O protocol core; this package is the application on top of it.
Its settings (``CALLGATE_SIP_*``, ``CALLGATE_RTP_*``) are fields of ``callgate.config.Settings``.

* ``repository.py`` — SIP accounts (user name, HA1 values, blocked or not) read from
  ``PhoneSettings`` + ``Extension`` + ``Client``.
* ``registrar.py`` — sans-I/O REGISTER handling with digest authentication and in-memory bindings.
* ``endpoint.py`` — the asyncio loop: UDP and TCP transports → ``TransactionLayer`` → a request
  handler; one timer for the transaction layer's next deadline.
* ``call.py``, ``routing.py``, ``legs.py``, ``b2bua.py`` — the call engine (docs/calls.md): pure
  call state, number routing, SIP legs and forking, the back-to-back user agent.
* ``trunks.py`` — SIP trunks to providers; ``control.py`` — the API's call control over the
  engine; ``channel.py`` — that control across processes.
* ``service.py`` — the SIP application: dispatches requests by method and
  :func:`~callgate.pbx.service.start_pbx`, what ``callgate serve`` and ``callgate sip`` call.
"""
