"""Alertmanager alerts that become incidents: deduplicated by fingerprint, resolutions recorded."""
