"""PBX applications: OAuth2 clients registered by users (SPEC §2)."""
