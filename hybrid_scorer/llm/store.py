"""Where LLM results live, behind one interface: the local diskcache (llm/cache.py) or a Parquet
feature store that any number of machines write shards into (this module). Same keys (the request hash
of llm/client.py), same values, so `train`, `evaluate`, `ablate` and `predict` read either without
knowing which engine produced them.

A Parquet store is a directory of shards with the columns `key`, `json`, `vector`, `run_id`: an entry is
either a JSON document (an assessment with its usage, an embedding's usage) or a float32 vector. Shards
are only ever added; a later entry for a key wins. Keys starting with `usage:` record what every call
of a run cost (failures included), so a run's ledger can be rebuilt from the store."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
COLUMNS = ("key", "json", "vector", "run_id")


class FeatureStore(Protocol):
    """JSON documents and float32 vectors by key."""

    def get_json(self, key: str) -> dict[str, Any] | None: ...

    def set_json(self, key: str, value: dict[str, Any]) -> None: ...

    def get_vector(self, key: str) -> np.ndarray | None: ...

    def set_vector(self, key: str, vector: np.ndarray) -> None: ...

    def __contains__(self, key: object) -> bool: ...

    def flush(self) -> None:
        """Make everything set so far durable (a no-op where every set already is)."""
        ...


class MemoryStore:
    """The in-memory store: what a Ray actor fills for one batch, and the base of the Parquet store."""

    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id
        self._json: dict[str, str] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def get_json(self, key: str) -> dict[str, Any] | None:
        value = self._json.get(key)
        return json.loads(value) if value is not None else None

    def set_json(self, key: str, value: dict[str, Any]) -> None:
        self._json[key] = json.dumps(value)

    def get_vector(self, key: str) -> np.ndarray | None:
        vector = self._vectors.get(key)
        return vector.copy() if vector is not None else None

    def set_vector(self, key: str, vector: np.ndarray) -> None:
        self._vectors[key] = np.asarray(vector, dtype=np.float32)

    def __contains__(self, key: object) -> bool:
        return key in self._json or key in self._vectors

    def __len__(self) -> int:
        return len(self._json) + len(self._vectors)

    def flush(self) -> None:
        """Nothing to make durable in memory."""

    def rows(self) -> pd.DataFrame:
        """Every entry as a row of the Parquet schema."""
        entries: list[dict[str, Any]] = [
            {"key": k, "json": v, "vector": None, "run_id": self.run_id} for k, v in self._json.items()
        ]
        entries += [
            {"key": k, "json": None, "vector": v.tolist(), "run_id": self.run_id} for k, v in self._vectors.items()
        ]
        return pd.DataFrame(entries, columns=list(COLUMNS))

    def load_rows(self, rows: pd.DataFrame) -> None:
        for key, text, vector in zip(rows["key"], rows["json"], rows["vector"], strict=True):
            if isinstance(text, str):
                self._json[key] = text
            elif vector is not None:
                self._vectors[key] = np.asarray(vector, dtype=np.float32)

    def usage_records(self, run_id: str) -> Iterator[dict[str, Any]]:
        """The usage of every call a run made (its `usage:<run_id>:...` entries)."""
        prefix = f"usage:{run_id}:"
        for key, value in self._json.items():
            if key.startswith(prefix):
                yield json.loads(value)


def open_store(cache_dir: Path, features: Path | None) -> FeatureStore:
    """The Parquet feature store at `features` when given, else the local diskcache at `cache_dir`."""
    from hybrid_scorer.llm.cache import LLMCache

    return ParquetStore(features) if features is not None else LLMCache(cache_dir)


class ParquetStore(MemoryStore):
    """A directory of Parquet shards, loaded into memory when opened; new entries are written as a new
    shard every `flush_every` entries and on flush(), so an interruption loses at most that many."""

    def __init__(self, directory: Path | str, flush_every: int = 16) -> None:
        super().__init__(run_id=f"local-{uuid.uuid4().hex[:12]}")
        self.directory = Path(directory)
        self.flush_every = flush_every
        self._pending = MemoryStore(self.run_id)
        self._read: set[Path] = set()
        self.reload()

    def reload(self) -> None:
        """Read the shards not read yet, e.g. those other writers added since (a shard cut short by a
        killed writer is skipped, with a warning, and read again next time)."""
        import pyarrow.parquet as pq

        shards = sorted(self.directory.rglob("*.parquet")) if self.directory.is_dir() else []
        for shard in (s for s in shards if s not in self._read):
            try:
                self.load_rows(pq.read_table(shard, columns=list(COLUMNS)).to_pandas())
                self._read.add(shard)
            except Exception as exc:  # any unreadable shard: its entries are simply recomputed
                log.warning("skipping unreadable feature-store shard %s: %s", shard, exc)

    def set_json(self, key: str, value: dict[str, Any]) -> None:
        super().set_json(key, value)
        self._pending.set_json(key, value)
        self._maybe_flush()

    def set_vector(self, key: str, vector: np.ndarray) -> None:
        super().set_vector(key, vector)
        self._pending.set_vector(key, vector)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not len(self._pending):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        shard = self.directory / f"{self.run_id}-{uuid.uuid4().hex[:8]}.parquet"
        partial = shard.with_suffix(".tmp")
        self._pending.rows().to_parquet(partial, index=False)
        partial.rename(shard)  # a reader never sees half a shard
        self._read.add(shard)  # its entries are in memory already
        self._pending = MemoryStore(self.run_id)
