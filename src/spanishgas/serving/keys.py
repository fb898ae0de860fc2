"""The scoring API's keys: each configured either as the key itself or as ``sha256:<hex digest>``, so a
deployment's settings need not hold any key in the clear. A given key is hashed once and compared with
every configured digest in constant time, so the time taken says neither which key matched nor whether
one did."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from pydantic import SecretStr

HASHED = "sha256:"


def key_digest(key: str) -> bytes:
    """SHA-256 of a key as given in the ``X-API-Key`` header."""
    return hashlib.sha256(key.encode()).digest()


def configured_digest(entry: str) -> bytes:
    """The digest one configured entry stands for (a key, or ``sha256:`` and 64 hex digits)."""
    if not entry.startswith(HASHED):
        return key_digest(entry)
    hexdigits = entry.removeprefix(HASHED)
    if len(hexdigits) != 64:
        raise ValueError("a hashed API key is 'sha256:' followed by 64 hex digits")
    return bytes.fromhex(hexdigits)


class ApiKeys:
    """The configured keys, held as digests only."""

    def __init__(self, configured: Iterable[SecretStr]) -> None:
        self._digests = [configured_digest(k.get_secret_value()) for k in configured]

    def __len__(self) -> int:
        return len(self._digests)

    def accepts(self, given: str | None) -> bool:
        """Whether ``given`` is one of the configured keys."""
        digest = key_digest(given or "")
        matched = False
        for accepted in self._digests:  # every one, whatever matched
            matched |= hmac.compare_digest(digest, accepted)
        return bool(given) and matched
