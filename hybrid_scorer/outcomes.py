"""Delayed labels: every prediction's id and bounds, the realised scores fed back later, and the quality
they measure, in one SQLite file beside the prediction log (durable across restarts, safe for several
readers while the service writes).

A prediction is recorded when its log line is written (serving/predictlog.py's writer thread, in batches).
Feedback (`POST /v1/feedback`, `hybrid-scorer feedback FILE.csv`) may arrive before its prediction is on
disk or name an id this store never saw: it is kept either way and joins when it can. The realised
Spearman, RMSE and interval coverage per cohort (the UTC day or ISO week of the prediction) come with
bootstrap intervals; `hybrid-scorer monitor` prints them and `/metrics` exports the latest cohort's."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from hybrid_scorer.evaluation import bootstrap_intervals
from hybrid_scorer.target import log_target

Cohort = Literal["day", "week"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY, predicted_at TEXT NOT NULL, model_version TEXT NOT NULL,
    log_prediction REAL NOT NULL, low_80 REAL, high_80 REAL, low_90 REAL, high_90 REAL, fallback INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    prediction_id TEXT PRIMARY KEY, score REAL NOT NULL, observed_at TEXT NOT NULL, received_at TEXT NOT NULL
);
"""


def outcomes_path(log_path: Path) -> Path:
    """The store lives beside the prediction log it belongs to."""
    return log_path.with_name("outcomes.sqlite")


@dataclass(frozen=True)
class Feedback:
    prediction_id: str
    score: float
    observed_at: datetime


class OutcomeStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._connection() as db:
            db.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections are not shared across threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def add_predictions(self, records: Iterable[dict[str, Any]]) -> None:
        """Records shaped like the prediction log's lines (prediction_id, timestamp, intervals, ...)."""
        rows = [
            (
                r["prediction_id"],
                r["timestamp"],
                r["model_version"],
                r["log_score"],
                *(r.get("interval_80") or (None, None)),
                *(r.get("interval_90") or (None, None)),
                int(r["fallback"]),
            )
            for r in records
        ]
        with self._connection() as db:
            db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def add_feedback(self, items: Iterable[Feedback]) -> int:
        """Store realised scores (a later one for the same prediction replaces the earlier); returns how
        many were stored."""
        now = datetime.now(UTC).isoformat()
        rows = [(f.prediction_id, float(f.score), f.observed_at.isoformat(), now) for f in items]
        with self._connection() as db:
            db.executemany("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def joined(self) -> pd.DataFrame:
        """Predictions with their realised score (only those that have one)."""
        query = (
            "SELECT p.*, f.score, f.observed_at FROM predictions p JOIN feedback f USING (prediction_id)"
            " ORDER BY p.predicted_at"
        )
        return pd.read_sql_query(query, self._connection())

    def counts(self) -> dict[str, int]:
        db = self._connection()
        unmatched = "SELECT COUNT(*) FROM feedback WHERE prediction_id NOT IN (SELECT prediction_id FROM predictions)"
        return {
            "predictions": db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0],
            "feedback": db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0],
            "feedback_without_prediction": db.execute(unmatched).fetchone()[0],
        }


@dataclass
class CohortQuality:
    cohort: str
    labels: int
    spearman: tuple[float, float, float]  # point, 2.5%, 97.5% (bootstrap over the cohort's posts)
    rmse: tuple[float, float, float]
    coverage_80: float
    coverage_90: float


def cohort_of(timestamps: pd.Series, cohort: Cohort) -> pd.Series:
    times = pd.to_datetime(timestamps, utc=True, format="ISO8601")
    if cohort == "day":
        return times.dt.strftime("%Y-%m-%d")
    iso = times.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)


def realised_quality(joined: pd.DataFrame, cohort: Cohort = "week", n_boot: int = 1000) -> list[CohortQuality]:
    """Per cohort of prediction time: Spearman and RMSE of the predictions against log1p(realised score),
    with 95% bootstrap intervals, and the share of realised scores inside the 80% and 90% intervals."""
    if joined.empty:
        return []
    out = []
    for name, rows in joined.groupby(cohort_of(joined["predicted_at"], cohort), sort=True):
        y = log_target(rows["score"])
        point = rows["log_prediction"].to_numpy(np.float64)
        intervals = bootstrap_intervals(y, point, n_boot=n_boot, seed=0)[0] if len(rows) > 2 else None
        score = rows["score"].to_numpy(np.float64)
        out.append(
            CohortQuality(
                cohort=str(name),
                labels=len(rows),
                spearman=intervals["spearman"] if intervals else (np.nan, np.nan, np.nan),
                rmse=intervals["rmse"] if intervals else (np.nan, np.nan, np.nan),
                coverage_80=float(np.mean((score >= rows["low_80"]) & (score <= rows["high_80"]))),
                coverage_90=float(np.mean((score >= rows["low_90"]) & (score <= rows["high_90"]))),
            )
        )
    return out
