"""Callgate's media engine: G.711, RTP and RFC 4733 events, SDP offer/answer, and the RTP relay.

Layers, bottom up (see ``docs/media.md``):

- :mod:`callgate.media.g711` — codec tables, tones, Goertzel detection (never on the hot path);
- :mod:`callgate.media.rtp` — sans-I/O RTP/RTCP recognition, RTP header and telephone-event codec,
  and the packet generator used by players;
- :mod:`callgate.media.sdp` — sans-I/O SDP parse/build and the RFC 3264 answer;
- :mod:`callgate.media.relay` — the sans-I/O relay core (legs, latching, bridges, hold, players,
  recorder) and the thin asyncio layer (:class:`~callgate.media.relay.MediaRelay`) that binds UDP
  port pairs and drives it.

The SIP engine (B2BUA) uses it like this: per call leg it asks the relay for a leg
(``await relay.open_leg()``), puts the leg's local port into its SDP
(:func:`callgate.media.sdp.build_offer` / :func:`~callgate.media.sdp.build_answer`), tells the
leg where the phone receives (``leg.expect(...)`` from :func:`~callgate.media.sdp.media_target`),
joins two legs with ``relay.bridge(a, b)``, and on a hold re-INVITE calls
``bridge.hold(leg, audio)``.
"""
