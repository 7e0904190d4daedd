"""Callgate: a self-hosted PBX whose heart is a developer platform."""

__version__ = "0.1.0"
