"""The prediction log: JSON lines, rotated at a size bound, read by `hybrid-scorer monitor`."""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path
from typing import Any


class PredictionLog:
    """JSON lines, rotated at `max_bytes` with 3 backups, so the log never grows without bound.
    Python's logging handlers lock around each write, so concurrent requests never interleave lines."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._logger = logging.getLogger(f"hybrid_scorer.predictions.{path.resolve()}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        if not self._logger.handlers:
            handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=3)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def write(self, record: dict[str, Any]) -> None:
        self._logger.info(json.dumps(record, default=str))
