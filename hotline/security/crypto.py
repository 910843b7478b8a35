"""Encryption at rest and the keyed number hash, both with key ids so that keys can rotate.

Encrypted values
----------------
AES-256-GCM with a random 96-bit nonce.  A stored value names the key that encrypted it::

    text:   enc1:<kid>:<base64(nonce | ciphertext | tag)>
    bytes:  b"enc1:<kid>:" + nonce | ciphertext | tag

``kid`` is eight hex digits derived from the key itself, so the key list needs no names.
``HOTLINE_ENCRYPTION_KEYS`` is a comma-separated list of 32-byte url-safe base64 keys (the
format ``hotline keys generate`` prints, the same as a Fernet key): the first encrypts, every one
decrypts.  A value without the ``enc1:`` prefix is a row written before encryption existed and is
returned as it is (``hotline keys rotate`` encrypts such rows).  Empty strings and NULLs are kept
as they are: emptiness tells nothing about the caller, and retention can find what is left to
purge without decrypting.

Number hash
-----------
``HOTLINE_NUMBER_HASH_KEYS`` (default: the secret key) lists HMAC-SHA256 keys, newest first.
A hash is stored as ``<kid>:<hex>``; looking a caller up matches the hash of the number under
every configured key (and the unprefixed hash written before key ids existed), so caller history
keeps working while ``hotline keys rotate`` re-hashes rows under the newest key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc1:"
PREFIX_B = PREFIX.encode()
KID_LEN = 8
NONCE_LEN = 12
HEADER_LEN = len(PREFIX) + KID_LEN + 1  # "enc1:" + kid + ":"
SHORT = 128  # encrypted values up to this length (numbers, short texts) are cached once decrypted


class CryptoError(ValueError):
    """A key setting is malformed, or a value was encrypted under a key no longer configured."""


def generate_key() -> str:
    """A new encryption key in the format ``HOTLINE_ENCRYPTION_KEYS`` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode_key(text: str, position: int) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode() + b"=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise CryptoError(
            f"HOTLINE_ENCRYPTION_KEYS: key number {position} is not 32 bytes of url-safe base64 "
            "(make one with: hotline keys generate)"
        )
    return raw


def key_id(raw: bytes, purpose: str = "enc") -> str:
    return hashlib.sha256(f"hotline-{purpose}-kid:".encode() + raw).hexdigest()[:KID_LEN]


def split_keys(value: str) -> list[str]:
    return [k.strip() for k in value.replace("\n", ",").split(",") if k.strip()]


class Keyring:
    """The configured encryption keys: the first encrypts, all decrypt."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise CryptoError("no encryption key configured: set HOTLINE_ENCRYPTION_KEYS")
        self._aead: dict[str, AESGCM] = {}
        self.ids: list[str] = []
        for i, text in enumerate(keys, 1):
            raw = _decode_key(text, i)
            kid = key_id(raw)
            if kid not in self._aead:
                self._aead[kid] = AESGCM(raw)
                self.ids.append(kid)
        self.current = self.ids[0]
        self._current_aead = self._aead[self.current]
        self._text_header = f"{PREFIX}{self.current}:"
        self._bytes_header = self._text_header.encode()
        self._decrypt_short = functools.lru_cache(maxsize=4096)(self._decrypt_text)

    # ------------------------------------------------------------------ bytes
    def encrypt_bytes(self, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return self._bytes_header + nonce + self._current_aead.encrypt(nonce, data, None)

    def decrypt_bytes(self, blob: bytes) -> bytes:
        if not blob.startswith(PREFIX_B):
            return blob  # written before encryption
        kid = blob[len(PREFIX_B):len(PREFIX_B) + KID_LEN].decode("ascii", "replace")
        body = blob[HEADER_LEN:]
        return self._open(kid, body[:NONCE_LEN], body[NONCE_LEN:])

    # ------------------------------------------------------------------ text
    def encrypt_text(self, value: str) -> str:
        nonce = os.urandom(NONCE_LEN)
        sealed = self._current_aead.encrypt(nonce, value.encode("utf-8"), None)
        return self._text_header + binascii.b2a_base64(nonce + sealed, newline=False).decode("ascii")

    def decrypt_text(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value  # written before encryption
        if len(value) <= SHORT:
            # Short values (numbers) are read again and again while a call is live: decrypt once.
            return self._decrypt_short(value)
        return self._decrypt_text(value)

    def _decrypt_text(self, value: str) -> str:
        kid = value[len(PREFIX):len(PREFIX) + KID_LEN]
        try:
            body = binascii.a2b_base64(value[HEADER_LEN:].encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise CryptoError(f"a value marked as encrypted (key {kid}) is damaged: {exc}") from None
        return self._open(kid, body[:NONCE_LEN], body[NONCE_LEN:]).decode("utf-8")

    def _open(self, kid: str, nonce: bytes, sealed: bytes) -> bytes:
        aead = self._aead.get(kid)
        if aead is None:
            raise CryptoError(
                f"a value is encrypted with key {kid}, which is not in HOTLINE_ENCRYPTION_KEYS; put the "
                "old key back (after the new one) until 'hotline keys rotate' has finished"
            )
        try:
            return aead.decrypt(nonce, sealed, None)
        except Exception as exc:  # cryptography raises InvalidTag
            raise CryptoError(f"a value encrypted with key {kid} failed its integrity check") from exc

    # ------------------------------------------------------------------ helpers
    def needs_rotation(self, stored: str | bytes | None) -> bool:
        """True when a stored value is plaintext or encrypted under an older key."""
        if not stored:
            return False
        if isinstance(stored, bytes):
            return not stored.startswith(self._bytes_header)
        return not stored.startswith(self._text_header)

    def reencrypt_text(self, stored: str) -> str:
        return self.encrypt_text(self.decrypt_text(stored))

    def reencrypt_bytes(self, stored: bytes) -> bytes:
        return self.encrypt_bytes(self.decrypt_bytes(stored))


def stored_kid(stored: str | bytes | None) -> str | None:
    """The key id of a stored value; ``"plaintext"`` when unencrypted; None when empty."""
    if not stored:
        return None
    if isinstance(stored, bytes):
        if stored.startswith(PREFIX_B):
            return stored[len(PREFIX_B):len(PREFIX_B) + KID_LEN].decode("ascii", "replace")
        return "plaintext"
    if stored.startswith(PREFIX):
        return stored[len(PREFIX):len(PREFIX) + KID_LEN]
    return "plaintext"


# ---------------------------------------------------------------------- number hash
@dataclass(frozen=True)
class HashKeyring:
    """HMAC keys for the caller-number hash, newest first."""

    keys: tuple[tuple[str, bytes], ...]  # (kid, key)

    @classmethod
    def from_secrets(cls, secrets_: list[str]) -> HashKeyring:
        if not secrets_:
            raise CryptoError("no number-hash key configured: set HOTLINE_NUMBER_HASH_KEYS or HOTLINE_SECRET_KEY")
        seen: dict[str, bytes] = {}
        for text in secrets_:
            raw = text.encode()
            seen.setdefault(key_id(raw, "hash"), raw)
        return cls(tuple(seen.items()))

    @property
    def current(self) -> str:
        return self.keys[0][0]

    @property
    def ids(self) -> list[str]:
        return [kid for kid, _ in self.keys]

    def hash(self, normalized: str) -> str:
        kid, key = self.keys[0]
        return f"{kid}:{hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()}"

    def candidates(self, normalized: str) -> list[str]:
        """Every form this number's hash may be stored in: one per key, plus the unprefixed form
        written before hashes carried a key id."""
        out = []
        for kid, key in self.keys:
            digest = hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()
            out += [f"{kid}:{digest}", digest]
        return out


def hash_kid(stored: str | None) -> str | None:
    if not stored:
        return None
    head, sep, _ = stored.partition(":")
    return head if sep else "legacy"


# ---------------------------------------------------------------------- the configured rings
_lock = threading.Lock()
_cache: tuple[Any, Keyring, HashKeyring] | None = None


def _rings() -> tuple[Keyring, HashKeyring]:
    global _cache
    from hotline.settings import get_settings

    settings = get_settings()
    cached = _cache
    if cached is not None and cached[0] is settings:
        return cached[1], cached[2]
    with _lock:
        ring = Keyring(settings.effective_encryption_keys)
        hashes = HashKeyring.from_secrets(settings.effective_number_hash_keys)
        _cache = (settings, ring, hashes)  # holds the settings object: identity stays meaningful
        return ring, hashes


def keyring() -> Keyring:
    return _rings()[0]


def hash_keyring() -> HashKeyring:
    return _rings()[1]


def reset() -> None:
    global _cache
    _cache = None


def encrypt_text(value: str | None) -> str | None:
    if not value:
        return value
    return keyring().encrypt_text(value)


def decrypt_text(value: str | None) -> str | None:
    if not value:
        return value
    return keyring().decrypt_text(value)


def encrypt_bytes(value: bytes | None) -> bytes | None:
    if not value:
        return value
    return keyring().encrypt_bytes(value)


def decrypt_bytes(value: bytes | None) -> bytes | None:
    if not value:
        return value
    return keyring().decrypt_bytes(value)


def caller_hashes(normalized: str | None, stored: str | None) -> list[str]:
    """The hashes that name the same caller as a call with this number and stored hash: the
    number's hash under every configured key when the number is still kept, else the stored hash
    (a number removed by retention matches while its hash key stays configured)."""
    if not stored:
        return []
    out = hash_keyring().candidates(normalized) if normalized else []
    return list(dict.fromkeys([stored, *out]))
