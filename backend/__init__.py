"""PR-System backend: the HTTP service and everything with state."""
