"""Credentials tokens: generation, hashing, and encryption at rest.

Tokens partners present to us are stored as SHA-256 hashes (they are long
random values, so a fast hash is enough). The tokens we present to partners
must be readable again, so they are encrypted with the platform's secret key
(Fernet: AES-128-CBC with HMAC-SHA256) before they go into an event.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def new_token() -> str:
    """A credentials token: 43 URL-safe characters (within string(64))."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenVault:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode()).decode()


def load_or_create_key(configured: str, key_file: str) -> bytes:
    """The configured key, else the one in ``key_file`` (created, mode 0600,
    on first use: a local default that never leaves the machine)."""
    if configured:
        return configured.encode()
    path = Path(key_file)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key
