"""Backups of PR-System to S3-compatible storage (MinIO): create, verify, restore, prune, audit anchors."""
