"""Standard Webhooks signing: `whsec_` secrets and the v1 HMAC-SHA256 `webhook-signature` header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_signing_secret() -> str:
    """A random secret in the Standard Webhooks format: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_bytes(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def timestamp_header(moment: datetime) -> str:
    """The `webhook-timestamp` value: whole seconds since the epoch."""
    return str(int(moment.timestamp()))


def signature(secret: str, *, message_id: str, timestamp: str, body: bytes) -> str:
    """One `v1,<base64 HMAC-SHA256>` signature of `id.timestamp.body`."""
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_in_use: list[str], *, message_id: str, timestamp: str, body: bytes) -> str:
    """The `webhook-signature` value: one space-separated signature per secret (several during a rotation)."""
    if not secrets_in_use:
        raise ValueError("at least one signing secret is needed")
    return " ".join(signature(s, message_id=message_id, timestamp=timestamp, body=body) for s in secrets_in_use)


def signed_headers(secrets_in_use: list[str], *, message_id: str, sent_at: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one request."""
    stamp = timestamp_header(sent_at)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": signature_header(secrets_in_use, message_id=message_id, timestamp=stamp, body=body),
    }
