"""Idempotent intake: `Idempotency-Key` on the POSTs that create incidents (docs/deployment.md)."""
