"""The OAuth2 authorization server (SPEC §3), built on Authlib's protocol core."""
