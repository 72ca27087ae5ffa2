"""Slack incoming-webhook messages: `text` as the fallback and one mrkdwn section block."""

from __future__ import annotations

import json
from typing import Any

from backend.notify.render import detail_lines, headline

SLACK_TEXT_MAX = 2900  # a section block's text is limited to 3000 characters


def slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON body Slack's incoming webhooks accept."""
    title = slack_escape(headline(payload))
    details = "\n".join(slack_escape(line) for line in detail_lines(payload))
    body = f"*{title}*\n{details}"
    if len(body) > SLACK_TEXT_MAX:
        body = body[: SLACK_TEXT_MAX - 1] + "…"
    return {"text": title, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}


def slack_request(payload: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and body of the POST to a Slack incoming webhook."""
    body = json.dumps(slack_message(payload), ensure_ascii=False, separators=(",", ":")).encode()
    return {"Content-Type": "application/json"}, body
