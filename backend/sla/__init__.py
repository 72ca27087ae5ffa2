"""SLA policies, business calendars, clocks, sweeps, escalation rules, service-quality metrics and maintenance."""
