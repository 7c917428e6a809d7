"""The API key format: ``hek_<key_id>_<secret>``, its generation, parsing and hash.

* ``hek_`` marks the string as a hasura-edge key (secret scanners can match it).
* ``key_id``: 10 lower-case base32 characters (``[a-z2-7]``, 50 random bits). It is public: it is
  stored in ``edge.api_keys.key_prefix``, shown by ``keys list``, logged, and used to find the row.
  It never contains ``_``, so the split is unambiguous.
* ``secret``: ``secrets.token_urlsafe(32)``, 32 random bytes as 43 URL-safe base64 characters.

Example: ``hek_k3v9qz2m7a_Jq0bU1...`` (58 ASCII characters in all).

Only ``key_hash = sha256(whole key).hexdigest()`` is stored. A fast, unsalted hash is right here:
the secret has 256 random bits, so guessing it from a leaked hash is 2**256 work whatever the hash
speed, and slow KDFs (bcrypt, argon2) only help low-entropy, human-chosen passwords. A salt defends
against precomputed tables and against one guess testing many hashes at once; neither helps an
attacker when the input space is 2**256 and no two keys share a secret. A pepper would only matter
if the hashes leaked while the secrets stayed guessable, which they are not. Being fast also keeps a
verification at about a microsecond, so even a flood of wrong secrets costs the edge nothing. The
hash covers the key id too, so a secret is only valid under the id it was issued with.

Parsing checks the whole shape (prefix, lengths, alphabets, ASCII) before anything else, so a
malformed key is refused without a database access, and it raises nothing but ``InvalidApiKey``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from edge.keys.errors import InvalidApiKey

__all__ = ["KEY_ID_LENGTH", "KEY_LENGTH", "KEY_PREFIX", "ParsedKey", "generate_key", "hash_key", "parse_key"]

KEY_PREFIX = "hek_"
KEY_ID_LENGTH = 10
SECRET_BYTES = 32
SECRET_LENGTH = 43  # len(token_urlsafe(32)): 32 bytes in unpadded URL-safe base64
KEY_LENGTH = len(KEY_PREFIX) + KEY_ID_LENGTH + 1 + SECRET_LENGTH

_KEY = re.compile(rf"hek_(?P<key_id>[a-z2-7]{{{KEY_ID_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{{SECRET_LENGTH}}})")
KEY_ID_PATTERN = re.compile(rf"[a-z2-7]{{{KEY_ID_LENGTH}}}")


@dataclass(frozen=True)
class ParsedKey:
    """A well-formed presented key. ``repr`` hides the key so it cannot reach a log by accident."""

    key_id: str
    key: str

    def __repr__(self) -> str:
        return f"ParsedKey(key_id={self.key_id!r}, key=<hidden>)"

    @property
    def key_hash(self) -> str:
        return hash_key(self.key)

    def matches(self, stored_hash: str) -> bool:
        """Constant-time comparison of this key's hash with the stored one."""
        return hmac.compare_digest(self.key_hash.encode("ascii"), stored_hash.encode("ascii", "replace"))


def new_key_id() -> str:
    return base64.b32encode(secrets.token_bytes(7)).decode("ascii").lower()[:KEY_ID_LENGTH]


def generate_key(key_id: str | None = None) -> ParsedKey:
    """A new random key (a new random key id unless one is given)."""
    key_id = key_id if key_id is not None else new_key_id()
    if KEY_ID_PATTERN.fullmatch(key_id) is None:
        raise ValueError("a key id is 10 characters of [a-z2-7]")
    return ParsedKey(key_id=key_id, key=f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}")


def hash_key(key: str) -> str:
    """Hex SHA-256 of the whole key: the value stored in ``edge.api_keys.key_hash``."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def parse_key(presented: str) -> ParsedKey:
    """Check the shape of a presented key; raise ``InvalidApiKey`` (never echoing it) when it is malformed.

    >>> parse_key(generate_key("abcdefgh23").key).key_id
    'abcdefgh23'
    """
    # The length check first: a megabyte of junk costs no regex work.
    if not isinstance(presented, str) or len(presented) != KEY_LENGTH:
        raise InvalidApiKey()
    match = _KEY.fullmatch(presented)
    if match is None:
        raise InvalidApiKey()
    return ParsedKey(key_id=match["key_id"], key=presented)
