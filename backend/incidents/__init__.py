"""Incidents: create, read, list, change, assign, comment, the status machine, resolve."""
