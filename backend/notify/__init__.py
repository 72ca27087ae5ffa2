"""Notifications: endpoints, the transactional outbox, signed delivery to webhooks, Slack and e-mail."""
