"""Pieces shared by every feature: database access, secrets, errors, time."""
