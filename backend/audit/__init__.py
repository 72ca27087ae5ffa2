"""Audit log: one row per change, written in the change's own transaction."""
