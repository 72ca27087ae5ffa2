"""The `prs` command line."""
