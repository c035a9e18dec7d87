"""Served predictions into the outcome store, on the log's writer thread, surviving a database that is away.

The prediction log's writer thread hands each batch here (`add`, cheap) and then calls `drain`, which
writes what is pending in batches. When the store cannot be reached the batch goes back to the front of
the backlog and the next attempt waits `retry_every_s`: predictions keep being served and logged, and
the backlog drains when the database answers again. The backlog is bounded (`max_backlog`): past it the
oldest records are dropped and counted, never the process's memory. /metrics and /readyz report it."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from hybrid_scorer.errors import StoreUnavailableError
from hybrid_scorer.outcomes import OutcomeStore

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, store: OutcomeStore, max_backlog: int, batch: int = 2000, retry_every_s: float = 1.0) -> None:
        self.store = store
        self.max_backlog = max_backlog
        self.batch = batch
        self.retry_every_s = retry_every_s
        self.dropped = 0  # records given up past the bound
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # `add` (any thread) against `drain` (the writer thread)
        self._retry_at = 0.0

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def add(self, records: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self._pending.extend(records)
            self._bound()

    def _bound(self) -> None:
        over = len(self._pending) - self.max_backlog
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
            log.error("outcome store backlog over %d: dropped the %d oldest predictions", self.max_backlog, over)

    def drain(self, wait: bool = True) -> None:
        """Write what is pending; after a failure, not before `retry_every_s` has passed unless `wait`
        is False (the last attempt at shutdown)."""
        if wait and time.monotonic() < self._retry_at:
            return
        while self._pending:
            with self._lock:
                batch = [self._pending.popleft() for _ in range(min(self.batch, len(self._pending)))]
            try:
                self.store.add_predictions(batch)
            except StoreUnavailableError as exc:
                with self._lock:
                    self._pending.extendleft(reversed(batch))
                    self._bound()
                self._retry_at = time.monotonic() + self.retry_every_s
                log.warning("%d predictions wait for the outcome store: %s", len(self._pending), exc)
                return
