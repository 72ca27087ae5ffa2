"""Periodic tasks that run exactly once per tick across every worker replica."""
