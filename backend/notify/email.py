"""E-mail delivery over SMTP with STARTTLS or implicit TLS (smtplib, run in a thread)."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import ssl
import time
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal

from backend.config import Settings
from backend.notify.outcome import AttemptResult, excerpt_of
from backend.notify.render import detail_lines, headline

MAX_RECIPIENTS = 20
_ADDRESS = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def parse_recipients(target: str) -> list[str]:
    """Comma-separated addresses of an e-mail endpoint; ValueError names the first bad one."""
    addresses = [part.strip() for part in target.split(",") if part.strip()]
    if not addresses:
        raise ValueError("give at least one e-mail address")
    if len(addresses) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} addresses")
    for address in addresses:
        if not _ADDRESS.match(address):
            raise ValueError(f"'{address[:100]}' is not an e-mail address")
    return addresses


def email_message(
    payload: dict[str, Any],
    *,
    sender: str,
    recipients: list[str],
    endpoint_id: int,
    sent_at: datetime,
    letter: dict[str, str] | None = None,
) -> EmailMessage:
    """A plain-text message: headline, the key facts, and the event JSON for machines.

    A `letter` (subject and body written for people, e.g. an escalation to the target department) replaces the
    headline and opens the text; the key facts and the event JSON still follow it."""
    message = EmailMessage()
    message["Subject"] = "[PR-System] " + (letter["subject"] if letter else headline(payload))
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(sent_at)
    # The same Message-ID on a repeated delivery lets mail clients and scripts drop the duplicate.
    message["Message-ID"] = f"<{payload['id']}.{endpoint_id}@pr-system>"
    message["X-PRS-Event-Id"] = payload["id"]
    message["X-PRS-Event-Type"] = payload["type"]
    text = headline(payload) + "\n\n" + "\n".join(detail_lines(payload))
    if letter:
        text = letter["body"].rstrip() + "\n\n-- \n" + text
    text += "\n\n-- \nEvent JSON:\n" + json.dumps(payload, ensure_ascii=False, indent=2)
    message.set_content(text)
    return message


class EmailSender:
    """Sends through the configured SMTP server; each attempt opens its own connection."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        sender: str,
        ca_file: str,
        timeout_s: float,
    ):
        self.host, self.port, self.security = host, port, security
        self.username, self._password, self.sender = username, password, sender
        self.ca_file, self.timeout_s = ca_file, timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> "EmailSender":
        """The sender the PRS_SMTP_* settings describe."""
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            ca_file=settings.smtp_ca_file,
            timeout_s=settings.notify_timeout_s,
        )

    @property
    def configured(self) -> bool:
        """True when an SMTP server is set."""
        return bool(self.host)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context

    def _send_blocking(self, message: EmailMessage, recipients: list[str]) -> str:
        if self.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_s, context=self._tls_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with client:
            if self.security == "starttls":
                client.starttls(context=self._tls_context())
            if self.username:
                client.login(self.username, self._password)
            client.send_message(message, from_addr=self.sender, to_addrs=recipients)
            code, reply = client.noop()
        return f"{code} {reply.decode(errors='replace')}"

    async def send(
        self,
        payload: dict[str, Any],
        *,
        recipients: list[str],
        endpoint_id: int,
        sent_at: datetime,
        letter: dict[str, str] | None = None,
    ) -> AttemptResult:
        """Deliver one event by e-mail; SMTP 5xx answers fail for good, everything else transient is retried."""
        start = time.perf_counter()

        def elapsed_ms() -> int:
            return int((time.perf_counter() - start) * 1000)

        if not self.configured:
            return AttemptResult("fail", error="SMTP is not configured (PRS_SMTP_HOST)", duration_ms=0)
        message = email_message(
            payload, sender=self.sender, recipients=recipients, endpoint_id=endpoint_id, sent_at=sent_at, letter=letter
        )
        try:
            reply = await asyncio.wait_for(
                asyncio.to_thread(self._send_blocking, message, recipients), timeout=self.timeout_s
            )
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            outcome: Literal["fail", "retry"] = "fail" if all(code >= 500 for code in codes) else "retry"
            return AttemptResult(
                outcome,
                status_code=max(codes) if codes else None,
                duration_ms=elapsed_ms(),
                error=excerpt_of(f"recipients refused: {exc.recipients}"),
            )
        except smtplib.SMTPResponseException as exc:
            outcome = "fail" if exc.smtp_code >= 500 else "retry"
            return AttemptResult(
                outcome,
                status_code=exc.smtp_code,
                duration_ms=elapsed_ms(),
                error=excerpt_of(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"),
            )
        except smtplib.SMTPNotSupportedError as exc:
            return AttemptResult(
                "fail", error=excerpt_of(f"SMTP server lacks a needed feature: {exc}"), duration_ms=elapsed_ms()
            )
        except (TimeoutError, asyncio.TimeoutError):
            return AttemptResult("retry", error=f"SMTP timed out after {self.timeout_s}s", duration_ms=elapsed_ms())
        except (smtplib.SMTPException, OSError) as exc:
            return AttemptResult("retry", error=excerpt_of(f"{type(exc).__name__}: {exc}"), duration_ms=elapsed_ms())
        return AttemptResult("success", status_code=250, excerpt=excerpt_of(reply), duration_ms=elapsed_ms())
