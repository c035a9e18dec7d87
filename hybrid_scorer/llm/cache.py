"""On-disk LLM cache (diskcache: SQLite underneath, safe with several processes writing).

The key hashes everything that can change an answer: backend, model, prompt text, JSON schema,
sampling parameters and the post text. Change any of them and the key changes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import diskcache
import numpy as np


def cache_key(kind: str, **parts: Any) -> str:
    payload = json.dumps({"kind": kind, **parts}, sort_keys=True, default=str)
    return f"{kind}:{hashlib.sha256(payload.encode()).hexdigest()}"


class LLMCache:
    """JSON-able dicts for assessments; float32 bytes for embedding vectors (4x smaller than lists)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**32)

    def get_json(self, key: str) -> dict[str, Any] | None:
        value = self._cache.get(key)
        return json.loads(value) if isinstance(value, str) else None

    def set_json(self, key: str, value: dict[str, Any]) -> None:
        self._cache.set(key, json.dumps(value))

    def get_vector(self, key: str) -> np.ndarray | None:
        value = self._cache.get(key)
        return np.frombuffer(value, dtype=np.float32).copy() if isinstance(value, bytes) else None

    def set_vector(self, key: str, vector: np.ndarray) -> None:
        self._cache.set(key, np.asarray(vector, dtype=np.float32).tobytes())

    def __contains__(self, key: object) -> bool:
        return key in self._cache

    def flush(self) -> None:
        """Every set is already durable (SQLite underneath)."""
