"""Conversation recordings (WAV files under the data directory)."""
