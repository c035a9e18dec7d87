"""The prediction log: JSON lines, rotated at a size bound, read by `hybrid-scorer monitor`.

Written off the request path: `write` puts the record on a bounded queue and one writer thread
serializes and appends whatever has queued up in one write, so a request pays for neither the JSON
encoding nor the disk, and the writer takes the GIL once per batch, not once per line. When the writer
falls behind by `max_pending` records, `write` waits for room (back-pressure) rather than drop a line;
`close` drains the queue, so a graceful shutdown loses nothing."""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_STOP = object()
BACKUPS = 3


class PredictionLog:
    """JSON lines; past `max_bytes` the file becomes `<name>.1` (older ones `.2`, `.3`, then dropped), so
    the log never grows without bound."""

    def __init__(self, path: Path, max_bytes: int, max_pending: int = 10_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._file = path.open("a", encoding="utf-8")
        self._size = self._file.tell()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._writer = threading.Thread(target=self._drain, name="prediction-log", daemon=True)
        self._closed = False
        self._writer.start()
        atexit.register(self.close)  # `predict()` in a script: the last lines reach the file at exit

    def write(self, record: dict[str, Any]) -> None:
        if self._closed:
            raise RuntimeError(f"the prediction log {self.path} is closed")
        self._queue.put(record)

    def _drain(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < 1000:  # whatever else is waiting, in the same write
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(r is _STOP for r in batch)
            try:
                self._append([r for r in batch if r is not _STOP])
            except Exception:  # a broken record or a full disk must not stop the writer: say so, go on
                log.exception("could not write %d prediction records to %s", len(batch), self.path)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _append(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, default=str) + "\n" for r in records)
        if self._size and self._size + len(text) > self.max_bytes:
            self._rotate()
        self._file.write(text)
        self._file.flush()
        self._size += len(text.encode())

    def _rotate(self) -> None:
        self._file.close()
        for i in range(BACKUPS - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("a", encoding="utf-8")
        self._size = 0

    def flush(self) -> None:
        """Wait until every record written so far is in the file."""
        self._queue.join()

    def close(self) -> None:
        """Write everything queued, then stop the writer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        self._file.close()
        atexit.unregister(self.close)
