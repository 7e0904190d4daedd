"""Phone extensions' SIP settings and incoming-call rules."""
