"""Who may call the service, and how often: API keys kept as salted hashes, a token bucket per key.

A key is `hs_<id>_<secret>`; the service stores only `<id>:<salt>:<sha256(salt + secret)>` (from
HYBRID_SCORER_API_KEYS: the entries themselves, comma-separated, or the path of a file with one per line),
so neither the settings nor the logs hold a key, only its id. `hybrid-scorer api-key NAME` makes one.
Without configured keys the service is open and every client address gets its own bucket."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hybrid_scorer.errors import ConfigurationError

_ID = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_KEY = re.compile(r"^hs_([A-Za-z0-9-]{1,32})_([A-Za-z0-9_-]{20,200})$")


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}{secret}".encode()).hexdigest()


def new_key(key_id: str) -> tuple[str, str]:
    """(the key to hand out, the entry to put in HYBRID_SCORER_API_KEYS)."""
    if not _ID.match(key_id):
        raise ConfigurationError(f"API key id {key_id!r}: use 1-32 letters, digits or '-'")
    secret, salt = secrets.token_urlsafe(32), secrets.token_hex(16)
    return f"hs_{key_id}_{secret}", f"{key_id}:{salt}:{_digest(salt, secret)}"


@dataclass(frozen=True)
class ApiKeys:
    entries: dict[str, tuple[str, str]]  # id -> (salt, digest)

    @classmethod
    def parse(cls, setting: str | None) -> ApiKeys | None:
        """From the setting's value: entries, or the path of a file of them (None: no keys, open)."""
        if not setting:
            return None
        path = Path(setting)
        if "\n" not in setting and ":" not in setting and not path.is_file():  # a path, not entries: it is not there
            raise ConfigurationError(
                f"HYBRID_SCORER_API_KEYS={setting!r}: no such file (give a file of entries, or the entries themselves,"
                " comma-separated, made with `hybrid-scorer api-key NAME`)"
            )
        text = path.read_text() if "\n" not in setting and path.is_file() else setting.replace(",", "\n")
        entries = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":")
            if len(parts) != 3 or not _ID.match(parts[0]) or not re.fullmatch(r"[0-9a-f]{64}", parts[2]):
                raise ConfigurationError(
                    f"HYBRID_SCORER_API_KEYS entry {number} is not <id>:<salt>:<sha256 hex>: make entries with"
                    " `hybrid-scorer api-key NAME` (a key itself never goes in the settings)"
                )
            entries[parts[0]] = (parts[1], parts[2])
        if not entries:
            raise ConfigurationError("HYBRID_SCORER_API_KEYS holds no entry")
        return cls(entries)

    def identify(self, presented: str | None) -> str | None:
        """The id of a valid key, or None (compared in constant time)."""
        found = _KEY.match(presented or "")
        if found is None or found.group(1) not in self.entries:
            return None
        salt, digest = self.entries[found.group(1)]
        return found.group(1) if hmac.compare_digest(_digest(salt, found.group(2)), digest) else None


class TokenBuckets:
    """`rate` requests a second per key on average, bursts of up to `burst`; refill is continuous."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None if the request may go now; otherwise the seconds until it may (Retry-After)."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                if key not in self._buckets and len(self._buckets) >= self.max_keys:
                    self._buckets.clear()  # many client addresses: forget the full buckets, not the limit
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
