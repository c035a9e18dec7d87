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
only the file, so by default a request never waits for the database.

Replicas that share a store answer a prediction only once its record is settled (`answer_after_record`):
`write` returns a ticket, the writer wakes at once instead of at its next cycle, and a request waits for
its ticket (`settled`, or `settled_async` on the event loop). Requests that arrive during one store commit
go into the next one together (group commit), so the cost is about one commit of latency, not one commit
per request. Settled means in the store, or in the recorder's backlog when the store is away: a dead
database still never stops answers. Then a replica killed mid-traffic (SIGKILL, an OOM) has lost no
prediction it answered, and delayed labels sent to another replica still find it. A request waits at most
SETTLE_WAIT_S: past it (a store that hangs rather than fails) it is answered, logged as answered before
its record, and the record follows as it would without the setting."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections import deque
from pathlib import Path
from typing import Any, BinaryIO

from pydantic_core import to_json

from hybrid_scorer.config import Settings
from hybrid_scorer.outcomes import OutcomeStore, store_url
from hybrid_scorer.serving.recorder import Recorder

log = logging.getLogger(__name__)
BACKUPS = 3
SETTLE_WAIT_S = 2.0  # the longest a request waits for its record: a store that hangs must not hang answers


class PredictionLog:
    """JSON lines; past `max_bytes` the file becomes `<name>.1` (older ones `.2`, `.3`, then dropped), so
    the log never grows without bound."""

    @classmethod
    def for_settings(cls, settings: Settings, path: Path | None = None) -> PredictionLog:
        """The log the settings describe (at `path` when given), recording into their outcome store."""
        path = Path(path or settings.log_path)
        recorder = Recorder(OutcomeStore(store_url(settings.database_url, path)), settings.database_backlog_max)
        return cls(path, settings.prediction_log_max_bytes, recorder, answer_after_record=settings.answers_after_record)

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        recorder: Recorder | None = None,
        flush_every_s: float = 0.05,
        max_pending: int = 10_000,
        answer_after_record: bool = False,
    ) -> None:
        """`recorder`: also record each prediction's id and bounds in the outcome store (delayed labels);
        `answer_after_record`: wake the writer at each line, so `settled` returns within one commit."""
        self.path = path
        self.recorder = recorder
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self._flush_every_s = flush_every_s
        self._file: BinaryIO | None = None  # opened, and the writer started, by the first `write`
        self._size = 0
        self.answer_after_record = answer_after_record
        self._lines: deque[tuple[bytes, dict[str, Any]]] = deque()
        self._lock = threading.Lock()  # one writer of the file at a time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._append = threading.Lock()  # tickets enter the buffer in order, so a flush takes a prefix of them
        self._written = 0  # the last ticket given out
        self._flushed = 0  # the last ticket moved to the file and the recorder
        self._settled = 0  # the last ticket whose record is in the store or its backlog
        self._settle = threading.Condition()
        self._async_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._writer: threading.Thread | None = None

    def _start(self) -> None:
        """Open the file and start the writer, once: at the first record, so that making a Predictor
        (to read its models, to check a release) touches no file and starts no thread."""
        with self._lock:
            if self._writer is not None:
                return
            if self._stop.is_set():
                raise RuntimeError(f"the prediction log {self.path} is closed")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self._size = self._file.tell()
            writer = threading.Thread(target=self._run, args=(self._flush_every_s,), name="prediction-log", daemon=True)
            writer.start()
            self._writer = writer
        atexit.register(self.close)  # `predict()` in a script: the last lines reach the file at exit

    def write(self, record: dict[str, Any]) -> int:
        """Buffer one record; returns its ticket for `settled`."""
        if self._stop.is_set():
            raise RuntimeError(f"the prediction log {self.path} is closed")
        if self._writer is None:
            self._start()
        line = to_json(record, serialize_unknown=True) + b"\n"
        with self._append:
            self._written += 1
            ticket = self._written
            self._lines.append((line, record))
        if self.answer_after_record:
            self._wake.set()
        if len(self._lines) > self.max_pending:
            self.flush()
        return ticket

    def settled(self, ticket: int) -> None:
        """With `answer_after_record`, wait until the record of `ticket` is in the store (or its backlog),
        SETTLE_WAIT_S at most (then say so); without, return at once."""
        if not self.answer_after_record:
            return
        with self._settle:
            if not self._settle.wait_for(lambda: self._settled >= ticket, SETTLE_WAIT_S):
                _answered_before_record(ticket)

    async def settled_async(self, ticket: int) -> None:
        """`settled` for an event loop: the writer thread resolves a future, no worker thread waits."""
        if not self.answer_after_record:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._settle:
            if self._settled >= ticket:
                return
            self._async_waiters.append((ticket, asyncio.get_running_loop(), future))
        try:
            await asyncio.wait_for(future, SETTLE_WAIT_S)
        except TimeoutError:
            _answered_before_record(ticket)

    def _run(self, every_s: float) -> None:
        while not self._stop.is_set():
            self._wake.wait(every_s)
            self._wake.clear()
            try:
                self.flush()
            except OSError:  # a full disk must not stop the writer: say so, keep the lines, try again
                log.exception("could not write prediction records to %s", self.path)
            if self.recorder is not None:
                self.recorder.drain()
            self._mark_settled(self._flushed)

    def _mark_settled(self, ticket: int) -> None:
        with self._settle:
            self._settled = ticket
            self._settle.notify_all()
            ready = [w for w in self._async_waiters if w[0] <= ticket]
            self._async_waiters = [w for w in self._async_waiters if w[0] > ticket]
        for _, loop, future in ready:
            loop.call_soon_threadsafe(_resolve, future)

    def flush(self) -> None:
        """Write every line buffered so far to the file."""
        with self._lock:
            with self._append:
                batch = [self._lines.popleft() for _ in range(len(self._lines))]
                flushed = self._written
            if not batch:
                return
            assert self._file is not None  # a line in the buffer means `write` has opened it
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
            self._flushed = flushed

    def _rotate(self) -> None:
        assert self._file is not None
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
        self._wake.set()
        with self._lock:  # a `write` starting the writer right now finishes first
            writer = self._writer
        if writer is not None:
            writer.join()
        self.flush()
        if self._file is not None:
            self._file.close()
        if self.recorder is not None:
            self.recorder.drain(wait=False)
            if self.recorder.backlog:
                log.error(
                    "%d predictions never reached the outcome store (they are in %s)", self.recorder.backlog, self.path
                )
        self._mark_settled(self._flushed)
        atexit.unregister(self.close)


def _answered_before_record(ticket: int) -> None:
    log.warning("prediction %d of this process was answered before its record reached the outcome store", ticket)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # its request may have timed out and cancelled it
        future.set_result(None)
