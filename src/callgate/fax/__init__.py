"""Faxes: received documents and outgoing fax jobs with their state machine."""
