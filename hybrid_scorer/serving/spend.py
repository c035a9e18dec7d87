"""A spend limit for hosted LLMs: the dollars of live calls in the last hour and day, against ceilings
(HYBRID_SCORER_LLM_MAX_USD_PER_HOUR, _PER_DAY). Past one, `predict()` scores new posts with the content
model, flagged `budget`, until the window has room again; cached answers stay free. A call's cost is
known only once it returned, so the ceiling can be passed by at most the calls in flight."""

from __future__ import annotations

import threading
import time
from collections import deque

HOUR_S, DAY_S = 3600.0, 86400.0


class SpendLimit:
    def __init__(self, per_hour: float | None, per_day: float | None) -> None:
        self.per_hour = per_hour
        self.per_day = per_day
        self._calls: deque[tuple[float, float]] = deque()  # (monotonic time, dollars) of live calls
        self._lock = threading.Lock()

    def record(self, usd: float) -> None:
        if usd > 0:
            with self._lock:
                self._calls.append((time.monotonic(), usd))

    def spent(self, window_s: float) -> float:
        now = time.monotonic()
        with self._lock:
            while self._calls and self._calls[0][0] < now - DAY_S:
                self._calls.popleft()
            return sum(usd for at, usd in self._calls if at >= now - window_s)

    def exceeded(self) -> str | None:
        """Why no new LLM call may be made now, or None."""
        for limit, window_s, name in ((self.per_hour, HOUR_S, "hour"), (self.per_day, DAY_S, "day")):
            if limit is not None and (spent := self.spent(window_s)) >= limit:
                setting = f"HYBRID_SCORER_LLM_MAX_USD_PER_{name.upper()}"
                return f"${spent:.4f} spent on the LLM in the last {name}, limit ${limit:g} ({setting})"
        return None
