"""The prediction log: JSON lines, rotated at a size bound, read by `hybrid-scorer monitor`.

Written off the request path: `write` serializes the record (pydantic-core, in Rust: microseconds) and
appends the line to a buffer; a writer thread moves the buffer to the file every `flush_every_s`, in one
write. The request never waits for the disk, and the writer takes the GIL a few times a second rather
than once per request (woken per line, it cost each prediction ~75 us of GIL time here: bench/predict.py
measures predict() with it). When lines pile up past `max_pending` (the disk is slower than the traffic),
the request writes them itself: back-pressure, never a dropped line. `close` writes what is left, so a
graceful shutdown loses nothing; a crash loses at most the last `flush_every_s`. The same writer records
each prediction's id and bounds in the outcome store, where delayed labels join them (outcomes.py), through
a recorder that keeps them while the store is unreachable (recorder.py): the back-pressure path writes
only the file, so a request never waits for the database."""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from hybrid_scorer.serving.recorder import Recorder

log = logging.getLogger(__name__)
BACKUPS = 3


class PredictionLog:
    """JSON lines; past `max_bytes` the file becomes `<name>.1` (older ones `.2`, `.3`, then dropped), so
    the log never grows without bound."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        recorder: Recorder | None = None,
        flush_every_s: float = 0.05,
        max_pending: int = 10_000,
    ) -> None:
        """`recorder`: also record each prediction's id and bounds in the outcome store (delayed labels)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.recorder = recorder
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self._file = path.open("ab")
        self._size = self._file.tell()
        self._lines: deque[tuple[bytes, dict[str, Any]]] = deque()
        self._lock = threading.Lock()  # one writer of the file at a time
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._run, args=(flush_every_s,), name="prediction-log", daemon=True)
        self._writer.start()
        atexit.register(self.close)  # `predict()` in a script: the last lines reach the file at exit

    def write(self, record: dict[str, Any]) -> None:
        if self._stop.is_set():
            raise RuntimeError(f"the prediction log {self.path} is closed")
        self._lines.append((to_json(record, serialize_unknown=True) + b"\n", record))
        if len(self._lines) > self.max_pending:
            self.flush()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.flush()
            except OSError:  # a full disk must not stop the writer: say so, keep the lines, try again
                log.exception("could not write prediction records to %s", self.path)
            if self.recorder is not None:
                self.recorder.drain()

    def flush(self) -> None:
        """Write every line buffered so far to the file."""
        with self._lock:
            batch = [self._lines.popleft() for _ in range(len(self._lines))]
            if not batch:
                return
            chunk: list[bytes] = []
            for line, _ in batch:  # rotate at line boundaries, so no file passes the bound by more than a line
                if self._size and self._size + len(line) > self.max_bytes:
                    self._file.write(b"".join(chunk))
                    chunk = []
                    self._rotate()
                chunk.append(line)
                self._size += len(line)
            self._file.write(b"".join(chunk))
            self._file.flush()
            if self.recorder is not None:
                self.recorder.add(record for _, record in batch)

    def _rotate(self) -> None:
        self._file.close()
        for i in range(BACKUPS - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        """Write everything buffered, then stop the writer (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._writer.join()
        self.flush()
        self._file.close()
        if self.recorder is not None:
            self.recorder.drain(wait=False)
            if self.recorder.backlog:
                log.error(
                    "%d predictions never reached the outcome store (they are in %s)", self.recorder.backlog, self.path
                )
        atexit.unregister(self.close)
