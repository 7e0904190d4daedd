"""Identity: clients (tenants), extensions and users (SPEC §1)."""
