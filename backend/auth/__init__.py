"""Accounts, passwords, tokens and the role checks every endpoint declares."""
