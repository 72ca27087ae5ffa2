"""Background work: the periodic scheduler (a task runs once per tick across every worker), the worker process that
runs it beside the suggestion dispatcher and the long-running loops, and periodic maintenance. What runs is listed
in one place, `backend/container.py` (`_register_background_work`); docs/jobs.md explains each engine."""
