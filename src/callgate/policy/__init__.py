"""The access policy of the resource API (SPEC §4) and the per-client rate limit."""
