"""The executor live LLM work runs on while serving, with admission control.

A backend that runs one call at a time (`max_concurrency` 1: the embedded model) makes requests queue
behind each other; work whose expected wait (calls ahead of it x the recent call time) would already
exceed the latency budget is refused at once (QueueFullError: the caller falls back, flagged "busy")
instead of joining a queue that only grows. A call counts as pending until it has really finished, so
work that timed out still holds its place while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFullError(RuntimeError):
    """Live LLM work would wait longer than the latency budget: the request is not queued."""


class LLMQueue(Executor):
    def __init__(self, workers: int, budget_ms: float, max_pending: int = 64) -> None:
        self.workers = workers
        self.budget_ms = budget_ms
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm")
        self._lock = threading.Lock()
        self._pending = 0
        self.call_ms = 0.0  # moving average of recent call durations (0 until one is known)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            rounds_ahead = self._pending // self.workers
            expected_ms = (rounds_ahead + 1) * self.call_ms
            if self._pending >= self.max_pending or (self._pending >= self.workers and expected_ms > self.budget_ms):
                raise QueueFullError(f"LLM busy: {self._pending} calls pending, ~{expected_ms:.0f} ms to answer")
            self._pending += 1
        return self._executor.submit(self._timed, fn, *args, **kwargs)

    def _timed(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.record((time.perf_counter() - started) * 1000)

    def record(self, elapsed_ms: float) -> None:
        """A call finished: it leaves the queue and updates the average call time."""
        with self._lock:
            self._pending = max(self._pending - 1, 0)
            self.call_ms = elapsed_ms if self.call_ms == 0 else 0.8 * self.call_ms + 0.2 * elapsed_ms

    @property
    def pending(self) -> int:
        return self._pending

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait, cancel_futures=cancel_futures)
