"""Event handlers: HTTP callbacks for call events on extensions and clients (SPEC §6)."""
