"""Metrics, health checks and structured logs."""
