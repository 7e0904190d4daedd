"""Callgate's sans-I/O SIP core: messages, parser, digest auth, transactions, dialogs, transports.

Everything here except :mod:`callgate.sip.transport` is pure: bytes or messages in, messages and
actions out, time passed in as a number. The engine layer (B2BUA, registrar, routing) drives it:

* :mod:`~callgate.sip.parser` turns datagrams/streams into :class:`~callgate.sip.message.Request`
  and :class:`~callgate.sip.message.Response` objects and back;
* :mod:`~callgate.sip.transaction` runs RFC 3261 §17 transactions and returns actions to perform;
* :mod:`~callgate.sip.dialog` keeps dialog state and builds in-dialog requests;
* :mod:`~callgate.sip.digest` challenges and verifies credentials, and answers trunk challenges;
* :mod:`~callgate.sip.transport` carries bytes over asyncio UDP and TCP.

See ``docs/sip.md`` for the design.
"""
