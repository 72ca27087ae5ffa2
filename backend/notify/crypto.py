"""Signing secrets at rest: AES-256-GCM under a key derived from the server's notify secret."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.config import Settings

# The first byte of every ciphertext names the format, so the scheme can change without a migration.
FORMAT_V1 = b"\x01"
NONCE_BYTES = 12
ASSOCIATED_DATA = b"pr-system/notify-endpoint-secret/v1"
KEY_FILE = "notify-key"


class SecretDecryptionError(RuntimeError):
    """A stored secret could not be decrypted: the notify key changed or the row was altered."""


def resolve_notify_key(settings: Settings) -> str:
    """The configured notify secret, or one generated once and kept in the data folder (mode 0600)."""
    if settings.notify_secret_key:
        if len(settings.notify_secret_key) < 32:
            raise ValueError("PRS_NOTIFY_SECRET_KEY must be at least 32 characters")
        return settings.notify_secret_key
    path: Path = settings.ensure_data_dir() / KEY_FILE
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            # link() fails when another process created the key first; theirs wins and both read it.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


class SecretBox:
    """Encrypts and decrypts endpoint signing secrets."""

    def __init__(self, server_secret: str):
        # The server secret may be any long string; SHA-256 of a domain-separated form makes a 256-bit key.
        key = hashlib.sha256(b"pr-system notify key v1\x00" + server_secret.encode()).digest()
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str) -> bytes:
        """Ciphertext with its format byte and a fresh random nonce."""
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_V1 + nonce + self._aead.encrypt(nonce, plaintext.encode(), ASSOCIATED_DATA)

    def decrypt(self, stored: bytes) -> str:
        """The plaintext of `encrypt`'s output; SecretDecryptionError when the key or the bytes are wrong."""
        if not stored or stored[:1] != FORMAT_V1 or len(stored) < 1 + NONCE_BYTES + 16:
            raise SecretDecryptionError("stored secret has an unknown format")
        nonce, body = stored[1 : 1 + NONCE_BYTES], stored[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, ASSOCIATED_DATA).decode()
        except InvalidTag:
            raise SecretDecryptionError("stored secret cannot be decrypted with this server's notify key") from None
