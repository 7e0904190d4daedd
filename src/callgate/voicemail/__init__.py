"""Voicemail messages left for extensions."""
