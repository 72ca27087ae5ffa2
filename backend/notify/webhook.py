"""Standard Webhooks requests: the event JSON as the body, signed with every secret in use."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from backend.notify.signing import signed_headers


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def webhook_request(
    payload: dict[str, Any], *, secrets_in_use: list[str], sent_at: datetime
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one signed webhook POST; webhook-id is the event id, so consumers can drop repeats."""
    body = webhook_body(payload)
    headers = {"Content-Type": "application/json"}
    headers.update(signed_headers(secrets_in_use, message_id=payload["id"], sent_at=sent_at, body=body))
    return headers, body
