"""Key material: `mh_<prefix>_<secret>`.

The prefix (8 hex digits) is public: it names the key in lists and finds its row. The whole key
string is hashed with SHA-256; a key carries 256 bits of randomness, so a fast hash is the right
tool (a slow password hash would only slow every request down, not an attacker).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _random

KEY_PREFIX = "mh_"
_KEY = re.compile(r"mh_([0-9a-f]{8})_[A-Za-z0-9_\-]{43}")
# Compared against when no row matches, so unknown and known prefixes cost the same comparison.
_DUMMY_HASH = hashlib.sha256(b"memoryhub-no-such-key").hexdigest()


def new_key() -> tuple[str, str]:
    """(prefix, full key)."""
    prefix = _random.token_hex(4)
    return prefix, f"{KEY_PREFIX}{prefix}_{_random.token_urlsafe(32)}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def prefix_of(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def verify(key: str, stored_hash: str | None) -> bool:
    """Constant-time check of `key` against a stored hash (None: no such key, still compared)."""
    return hmac.compare_digest(digest(key), stored_hash or _DUMMY_HASH) and stored_hash is not None
