"""Tests of the RTP media engine (callgate.media)."""
