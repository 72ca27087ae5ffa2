"""JWT signing keys with ids: several verify at once, one signs, rotation without downtime across replicas.

Keys live in Postgres, their secrets AES-256-GCM encrypted under a key derived from PRS_JWT_SECRET (or the
generated data_dir/jwt-secret). Every process keeps the keys in memory and re-reads them every
`signing_key_refresh_s` seconds, and at once when a token names a key it does not know, so a rotation made by
any replica or by `prs keys rotate` reaches every replica without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.audit import service as audit
from backend.auth import key_repository as repository
from backend.clock import Clock
from backend.config import Settings
from backend.context import RequestContext
from backend.db import transaction
from backend.errors import Unauthorized

PURPOSE = "access_token"
_FORMAT_V1 = b"\x01"
_NONCE_BYTES = 12
# An unknown kid re-reads the keys at most this often, so forged kids cannot flood the database.
_UNKNOWN_KID_RELOAD_S = 0.5


@dataclass(frozen=True)
class SigningKey:
    """One key: its id, its secret and until when tokens it signed are accepted (None: it is the current one)."""

    kid: str
    secret: str
    created_at: datetime
    verify_until: datetime | None


class KeyBox:
    """Encrypts signing-key secrets at rest; AAD binds each ciphertext to its kid."""

    def __init__(self, master_secret: str):
        key = hashlib.sha256(b"pr-system signing-key kek v1\x00" + master_secret.encode()).digest()
        self.kek_id = hashlib.sha256(b"pr-system kek id\x00" + key).hexdigest()[:16]
        self._aead = AESGCM(key)

    def encrypt(self, kid: str, secret: str) -> bytes:
        """The ciphertext of a secret, with a format byte and a fresh nonce."""
        nonce = os.urandom(_NONCE_BYTES)
        return _FORMAT_V1 + nonce + self._aead.encrypt(nonce, secret.encode(), self._aad(kid))

    def decrypt(self, kid: str, stored: bytes) -> str:
        """The secret, or ValueError when the ciphertext was altered or made under another master key."""
        if stored[:1] != _FORMAT_V1:
            raise ValueError(f"signing key {kid}: unknown ciphertext format")
        nonce, body = stored[1 : 1 + _NONCE_BYTES], stored[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, self._aad(kid)).decode()
        except InvalidTag:
            raise ValueError(f"signing key {kid} cannot be decrypted with this PRS_JWT_SECRET") from None

    @staticmethod
    def _aad(kid: str) -> bytes:
        return f"pr-system/signing-key/v1/{kid}".encode()


def new_kid() -> str:
    """A fresh, unguessable key id."""
    return secrets.token_urlsafe(12)


def new_secret() -> str:
    """A fresh HS256 secret of 256 random bits."""
    return secrets.token_urlsafe(32)


class SigningKeyRing:
    """The signing keys of this PRS_JWT_SECRET, cached per process and shared through Postgres."""

    def __init__(self, *, settings: Settings, pool: asyncpg.Pool, clock: Clock, master_secret: str):
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.box = KeyBox(master_secret)
        self._keys: dict[str, SigningKey] = {}
        self._current: SigningKey | None = None
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def retire_after(self) -> timedelta:
        """How long a replaced key still verifies: the longest token lifetime plus one refresh interval
        (a replica may sign with the old key until it next re-reads the keys)."""
        return timedelta(minutes=self.settings.access_token_minutes, seconds=self.settings.signing_key_refresh_s)

    async def current(self) -> SigningKey:
        """The key that signs new tokens (created on first use)."""
        if self._current is None or self._stale(self.settings.signing_key_refresh_s):
            await self.reload()
        assert self._current is not None
        return self._current

    async def verifying_key(self, kid: str) -> SigningKey:
        """The key a token names, or Unauthorized when it is unknown or retired."""
        if kid not in self._keys:
            # Perhaps a key another replica just made: re-read, but at most once per interval, so that forged
            # kids cannot flood the database; a request arriving sooner waits for that interval instead.
            wait = _UNKNOWN_KID_RELOAD_S - (time.monotonic() - self._loaded_at)
            if wait > 0:
                await asyncio.sleep(wait)
            if kid not in self._keys and self._stale(_UNKNOWN_KID_RELOAD_S):
                await self.reload()
        elif self._stale(self.settings.signing_key_refresh_s):
            await self.reload()
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("invalid access token: unknown signing key")
        if key.verify_until is not None and key.verify_until <= self.clock.now():
            raise Unauthorized("invalid access token: its signing key was retired; sign in again")
        return key

    async def reload(self) -> None:
        """Read the live keys from the database, creating the first one when there is none."""
        async with self._lock:
            async with self.pool.acquire() as conn:
                rows = await repository.live_keys(conn, purpose=PURPOSE, kek_id=self.box.kek_id)
                if not any(r["retired_at"] is None for r in rows):
                    # Two replicas may get here at once: the unique index keeps one current key.
                    kid = new_kid()
                    await repository.insert_key(
                        conn,
                        kid=kid,
                        purpose=PURPOSE,
                        kek_id=self.box.kek_id,
                        ciphertext=self.box.encrypt(kid, new_secret()),
                        now=self.clock.now(),
                        created_by="system",
                    )
                    rows = await repository.live_keys(conn, purpose=PURPOSE, kek_id=self.box.kek_id)
            keys = {
                r["kid"]: SigningKey(
                    kid=r["kid"],
                    secret=self.box.decrypt(r["kid"], r["secret_ciphertext"]),
                    created_at=r["created_at"],
                    verify_until=r["verify_until"],
                )
                for r in rows
            }
            self._keys = keys
            self._current = next(k for k in keys.values() if k.verify_until is None)
            self._loaded_at = time.monotonic()

    async def rotate(self, ctx: RequestContext) -> dict[str, Any]:
        """Make a new signing key; the old one keeps verifying for `retire_after`, then is destroyed."""
        now = self.clock.now()
        kid = new_kid()
        async with transaction(self.pool) as conn:
            await repository.lock_rotation(conn, kek_id=self.box.kek_id)
            old = await repository.lock_current(conn, purpose=PURPOSE, kek_id=self.box.kek_id)
            verify_until = now + self.retire_after
            if old is not None:
                await repository.retire(conn, old["kid"], now=now, verify_until=verify_until)
            await repository.insert_key(
                conn,
                kid=kid,
                purpose=PURPOSE,
                kek_id=self.box.kek_id,
                ciphertext=self.box.encrypt(kid, new_secret()),
                now=now,
                created_by=ctx.principal.name,
            )
            await audit.record(
                conn,
                ctx,
                at=now,
                action="signing_key.rotated",
                resource_type="signing_key",
                resource_id=kid,
                before={"kid": old["kid"]} if old else None,
                after={"kid": kid, "previous_verifies_until": verify_until.isoformat() if old else None},
            )
        await self.reload()
        return {
            "kid": kid,
            "created_at": now,
            "previous_kid": old["kid"] if old else None,
            "previous_verifies_until": verify_until if old else None,
        }

    async def destroy_expired(self) -> int:
        """Destroy the secrets of retired keys whose tokens can no longer be valid; return how many."""
        async with transaction(self.pool) as conn:
            return await repository.destroy_expired(conn, now=self.clock.now())

    async def list(self) -> list[dict[str, Any]]:
        """Every key of this master secret, newest first, with its state; never a secret."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            rows = await repository.list_keys(conn, purpose=PURPOSE, kek_id=self.box.kek_id)
        return [_key_view(r, now) for r in rows]

    def _stale(self, max_age_s: float) -> bool:
        return time.monotonic() - self._loaded_at >= max_age_s


def _key_view(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    if row["retired_at"] is None:
        state = "current"
    elif row["destroyed_at"] is None and row["verify_until"] > now:
        state = "verifying"
    else:
        state = "retired"
    return {
        "kid": row["kid"],
        "algorithm": row["algorithm"],
        "state": state,
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "retired_at": row["retired_at"],
        "verify_until": row["verify_until"],
        "destroyed_at": row["destroyed_at"],
    }
