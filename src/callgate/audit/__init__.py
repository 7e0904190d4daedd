"""The audit log: security-relevant events, never with a secret or token in them."""
