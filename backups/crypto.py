"""Encryption of backup objects: a key derived from a passphrase with scrypt, files sealed in AES-GCM chunks.

File layout: MAGIC, a 4-byte random nonce prefix, then chunks of (4-byte big-endian length, ciphertext+tag).
Chunk i uses nonce = prefix || i (8 bytes) and associated data = object name || i || final flag, so chunks
cannot be reordered, moved between objects, dropped from the end or come from another backup's key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"PRSBK1\n"
CHUNK_BYTES = 4 * 1024 * 1024
MIN_PASSPHRASE_CHARS = 32
KEY_CHECK_TEXT = b"pr-system backup key check"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


class EncryptionKeyMissing(Exception):
    """PRS_BACKUP_ENCRYPTION_KEY is unset or too short."""


class WrongEncryptionKey(Exception):
    """The passphrase does not open this backup."""


class CorruptObject(Exception):
    """An encrypted object fails authentication: it was changed or truncated."""


@dataclass(frozen=True)
class KeyParameters:
    """How a backup's key was derived (kept in its manifest)."""

    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def as_dict(self) -> dict[str, object]:
        """JSON form for the manifest."""
        return {"kdf": "scrypt", "salt": base64.b64encode(self.salt).decode(), "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> "KeyParameters":
        """Read the manifest's JSON form."""
        return cls(
            salt=base64.b64decode(str(values["salt"])),
            n=int(str(values["n"])),
            r=int(str(values["r"])),
            p=int(str(values["p"])),
        )


def check_passphrase(passphrase: str) -> str:
    """The passphrase itself, or EncryptionKeyMissing when it cannot protect a backup."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise EncryptionKeyMissing(
            f"PRS_BACKUP_ENCRYPTION_KEY must be a passphrase of at least {MIN_PASSPHRASE_CHARS} characters "
            "(backups are never written unencrypted)"
        )
    return passphrase


def new_key_parameters() -> KeyParameters:
    """Fresh parameters with a random per-backup salt."""
    return KeyParameters(salt=os.urandom(16))


def derive_key(passphrase: str, parameters: KeyParameters) -> bytes:
    """The 256-bit AES key of one backup."""
    check_passphrase(passphrase)
    return hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=parameters.salt,
        n=parameters.n,
        r=parameters.r,
        p=parameters.p,
        maxmem=128 * 1024 * 1024,
        dklen=32,
    )


def key_check(key: bytes) -> str:
    """A sealed constant stored in the manifest, so a wrong key is told apart before any download."""
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, KEY_CHECK_TEXT, b"key-check")).decode()


def confirm_key(key: bytes, sealed: str) -> None:
    """Raise WrongEncryptionKey unless `key` opens the manifest's key check."""
    raw = base64.b64decode(sealed)
    try:
        AESGCM(key).decrypt(raw[:12], raw[12:], b"key-check")
    except InvalidTag:
        raise WrongEncryptionKey(
            "the encryption key does not open this backup (PRS_BACKUP_ENCRYPTION_KEY differs "
            "from the one it was made with)"
        ) from None


def _aad(name: str, index: int, final: bool) -> bytes:
    return name.encode("utf-8") + struct.pack(">QB", index, 1 if final else 0)


def encrypt_file(key: bytes, name: str, source: Path, target: Path) -> None:
    """Seal `source` into `target`; `name` binds the ciphertext to its object name."""
    aead = AESGCM(key)
    prefix = os.urandom(4)
    with source.open("rb") as reader, target.open("wb") as writer:
        writer.write(MAGIC + prefix)
        index = 0
        chunk = reader.read(CHUNK_BYTES)
        while True:
            following = reader.read(CHUNK_BYTES)
            final = not following
            sealed = aead.encrypt(prefix + struct.pack(">Q", index), chunk, _aad(name, index, final))
            writer.write(struct.pack(">I", len(sealed)) + sealed)
            if final:
                return
            chunk, index = following, index + 1


def decrypt_file(key: bytes, name: str, source: Path, target: Path) -> None:
    """Open `source` into `target`; CorruptObject naming the object when anything does not authenticate."""
    aead = AESGCM(key)
    with source.open("rb") as reader, target.open("wb") as writer:
        head = reader.read(len(MAGIC) + 4)
        if len(head) != len(MAGIC) + 4 or not head.startswith(MAGIC):
            raise CorruptObject(f"{name}: not a PR-System backup object (bad header)")
        prefix, index = head[len(MAGIC) :], 0
        while True:
            length_bytes = reader.read(4)
            if len(length_bytes) != 4:
                raise CorruptObject(f"{name}: truncated (ends before its final chunk)")
            (length,) = struct.unpack(">I", length_bytes)
            sealed = reader.read(length)
            if len(sealed) != length:
                raise CorruptObject(f"{name}: truncated inside chunk {index}")
            final = reader.peek(1) == b""  # nothing after this chunk: it must be the one sealed as final
            try:
                plain = aead.decrypt(prefix + struct.pack(">Q", index), sealed, _aad(name, index, final))
            except InvalidTag:
                raise CorruptObject(
                    f"{name}: chunk {index} fails authentication (changed, truncated or another key)"
                ) from None
            writer.write(plain)
            if final:
                return
            index += 1


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        for block in iter(lambda: reader.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()
