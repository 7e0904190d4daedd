"""Uploaded audio: voicemail greetings, announcements, music on hold."""
