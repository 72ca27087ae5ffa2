"""Retrieval and reasoning: no HTTP and no SQL of its own.

The backend hands the agent text and gets back ranked cases and suggestions.
"""
