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

_SENTINEL = "\x00hybrid-scorer: the varying part\x00"


class KeyBuilder:
    """Keys `<kind>:<sha256 of the JSON of {"kind": kind, **constant, variable: value}, keys sorted>` for
    many values. The constant parts (the backend's identity, the schema as sent) are encoded and hashed
    once; each key hashes only its value, and the result is byte for byte the hash of the whole JSON
    (tests/test_llm.py pins the format: caches written before stay valid). Serving computes two keys per
    request; encoding the whole payload each time cost ~0.1 ms per key, most of it the same schema."""

    def __init__(self, kind: str, variable: str, **constant: Any) -> None:
        payload = json.dumps({"kind": kind, **constant, variable: _SENTINEL}, sort_keys=True, default=str)
        head, tail = payload.split(json.dumps(_SENTINEL), 1)
        self.kind = kind
        self._head = hashlib.sha256(head.encode())
        self._tail = tail.encode()

    def key(self, value: Any) -> str:
        digest = self._head.copy()
        digest.update(json.dumps(value, sort_keys=True, default=str).encode())
        digest.update(self._tail)
        return f"{self.kind}:{digest.hexdigest()}"


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
