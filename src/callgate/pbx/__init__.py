"""The PBX: Callgate's SIP endpoint and what runs on it (today the registrar; later the B2BUA).

``callgate.sip`` is the sans-I/O protocol core; this package is the application on top of it:

Its settings (``CALLGATE_SIP_*``, ``CALLGATE_RTP_*``) are fields of ``callgate.config.Settings``.
* ``repository.py`` — SIP accounts (user name, HA1 values, blocked or not) read from
  ``PhoneSettings`` + ``Extension`` + ``Client``.
* ``registrar.py`` — sans-I/O REGISTER handling with digest authentication and in-memory bindings.
* ``endpoint.py`` — the asyncio loop: UDP and TCP transports → ``TransactionLayer`` → a request
  handler; one timer for the transaction layer's next deadline.
* ``service.py`` — the SIP application: dispatches requests by method (REGISTER, OPTIONS, INVITE
  until the B2BUA exists…) and :func:`~callgate.pbx.service.start_pbx`, what ``callgate serve``
  and ``callgate sip`` call.
"""
