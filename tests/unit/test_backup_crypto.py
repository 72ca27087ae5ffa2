"""Backup encryption: chunked AES-GCM round trip, and every tampering or wrong key is detected."""

from __future__ import annotations

import os
import struct

import pytest

from backups.crypto import (
    CHUNK_BYTES,
    MAGIC,
    CorruptObject,
    EncryptionKeyMissing,
    WrongEncryptionKey,
    confirm_key,
    decrypt_file,
    derive_key,
    encrypt_file,
    key_check,
    new_key_parameters,
)

PASSPHRASE = "a passphrase of more than thirty-two characters"


@pytest.fixture(scope="module")
def key() -> bytes:
    return derive_key(PASSPHRASE, new_key_parameters())


def _chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    head, rest, chunks = sealed[: len(MAGIC) + 4], sealed[len(MAGIC) + 4 :], []
    while rest:
        (length,) = struct.unpack(">I", rest[:4])
        chunks.append(rest[: 4 + length])
        rest = rest[4 + length :]
    return head, chunks


def test_a_file_of_several_chunks_round_trips(tmp_path, key):
    plain = os.urandom(2 * CHUNK_BYTES + 1234)
    (tmp_path / "in").write_bytes(plain)
    encrypt_file(key, "database.dump", tmp_path / "in", tmp_path / "sealed")
    decrypt_file(key, "database.dump", tmp_path / "sealed", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == plain
    assert len(_chunks((tmp_path / "sealed").read_bytes())[1]) == 3


@pytest.mark.parametrize("damage", ["drop_last_chunk", "swap_chunks", "flip_bit", "other_name"])
def test_tampering_is_detected_and_named(tmp_path, key, damage):
    (tmp_path / "in").write_bytes(os.urandom(2 * CHUNK_BYTES + 10))
    encrypt_file(key, "database.dump", tmp_path / "in", tmp_path / "sealed")
    head, chunks = _chunks((tmp_path / "sealed").read_bytes())
    name = "database.dump"
    if damage == "drop_last_chunk":
        chunks = chunks[:-1]
    elif damage == "swap_chunks":
        chunks[0], chunks[1] = chunks[1], chunks[0]
    elif damage == "flip_bit":
        chunks[1] = chunks[1][:100] + bytes([chunks[1][100] ^ 1]) + chunks[1][101:]
    else:
        name = "vectors.npz"
    (tmp_path / "bad").write_bytes(head + b"".join(chunks))
    with pytest.raises(CorruptObject, match=name):
        decrypt_file(key, name, tmp_path / "bad", tmp_path / "out")


def test_a_wrong_passphrase_fails_the_key_check_and_a_short_one_is_refused():
    parameters = new_key_parameters()
    sealed = key_check(derive_key(PASSPHRASE, parameters))
    with pytest.raises(WrongEncryptionKey):
        confirm_key(derive_key(PASSPHRASE + "!", parameters), sealed)
    with pytest.raises(EncryptionKeyMissing, match="at least 32 characters"):
        derive_key("short", parameters)
