"""API keys of external systems: issue, rotate, revoke, and check on every request."""
