"""Flair and posting time. Posting *year* lives in its own group, `time_trend`, because in this data
it encodes how posts were sampled (old 'top' posts next to recent ones), not anything about content."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from hybrid_scorer.features.base import StatelessGroup, safe_name

_SPACES = re.compile(r"\s+")
NO_FLAIR = "none"
RARE_FLAIR = "other"


def normalize_flair(flair: object) -> str:
    """'  Linguistics', 'META' and 'Meta' are the same flair; empty means no flair."""
    text = _SPACES.sub(" ", str(flair) if isinstance(flair, str) else "").strip().lower()
    return text or NO_FLAIR


class MetaFeatures:
    """One-hot flair (flairs seen fewer than `min_count` times in training become 'other'), UTC hour
    and weekday."""

    name: ClassVar[str] = "meta"

    def __init__(self, min_count: int = 10) -> None:
        self.min_count = min_count
        self.flairs: list[str] = []

    def fit(self, posts: pd.DataFrame) -> Self:
        counts = posts["flair"].map(normalize_flair).value_counts()
        kept = sorted(counts[counts >= self.min_count].index)
        self.flairs = [*kept, RARE_FLAIR] if RARE_FLAIR not in kept else kept
        return self

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        flair = posts["flair"].map(normalize_flair)
        flair = flair.where(flair.isin(self.flairs), RARE_FLAIR)
        onehot = (flair.to_numpy()[:, None] == np.asarray(self.flairs)[None, :]).astype(np.float64)
        created = pd.to_datetime(posts["created_utc"], utc=True)
        time = np.column_stack([created.dt.hour.to_numpy(float), created.dt.day_of_week.to_numpy(float)])
        return np.hstack([onehot, time])

    @property
    def feature_names(self) -> list[str]:
        return [f"flair_{safe_name(f)}" for f in self.flairs] + ["hour_utc", "weekday_utc"]

    def to_dict(self) -> dict[str, Any]:
        return {"min_count": self.min_count, "flairs": self.flairs}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        group = cls(min_count=state["min_count"])
        group.flairs = list(state["flairs"])
        return group


class TimeTrendFeatures(StatelessGroup):
    """Posting time as a decimal year. Off by default: it mostly tells old 'top' posts from new ones."""

    name: ClassVar[str] = "time_trend"

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        created = pd.to_datetime(posts["created_utc"], utc=True)
        year = created.dt.year.to_numpy(float) + (created.dt.day_of_year.to_numpy(float) - 1) / 366.0
        return year.reshape(-1, 1)

    @property
    def feature_names(self) -> list[str]:
        return ["posted_year"]
