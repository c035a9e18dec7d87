"""Flair and posting time. Posting *year* lives in its own group, `time_trend`, because in this data
it encodes how posts were sampled (old 'top' posts next to recent ones), not anything about content."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from hybrid_scorer.features.base import GroupBase, PostRow, StatelessGroup, require_fitted, safe_name

_SPACES = re.compile(r"\s+")
NO_FLAIR = "none"
RARE_FLAIR = "other"


def normalize_flair(flair: object) -> str:
    """'  Linguistics', 'META' and 'Meta' are the same flair; empty means no flair."""
    text = _SPACES.sub(" ", str(flair) if isinstance(flair, str) else "").strip().lower()
    return text or NO_FLAIR


class MetaFeatures(GroupBase):
    """One-hot flair (flairs seen fewer than `min_count` times in training become 'other'), UTC hour
    and weekday. Keeps each flair level's share of the training posts: a post whose flair the caller
    does not know is scored as the average over these levels (see HybridScorer.predict_log)."""

    name: ClassVar[str] = "meta"
    reads_as: ClassVar[str] = "the flair and the posting time"
    reads_text: ClassVar[bool] = False

    def __init__(self, min_count: int = 10) -> None:
        self.min_count = min_count

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        flair = posts["flair"].map(normalize_flair)
        counts = flair.value_counts()
        kept = sorted(counts[counts >= self.min_count].index)
        flairs = [*kept, RARE_FLAIR] if RARE_FLAIR not in kept else kept
        shares = flair.where(flair.isin(flairs), RARE_FLAIR).value_counts(normalize=True)
        return self._set_state(flairs, {f: float(shares.get(f, 0.0)) for f in flairs})

    def _set_state(self, flairs: list[str], shares: dict[str, float]) -> Self:
        self.flairs_ = flairs
        self.flair_shares_ = shares
        self.flair_index_ = {f: i for i, f in enumerate(flairs)}  # the row path's one-hot, by index
        return self

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        require_fitted(self, "flairs_")
        flair = posts["flair"].map(normalize_flair)
        flair = flair.where(flair.isin(self.flairs_), RARE_FLAIR)
        onehot = (flair.to_numpy()[:, None] == np.asarray(self.flairs_)[None, :]).astype(np.float64)
        created = pd.to_datetime(posts["created_utc"], utc=True)
        time = np.column_stack([created.dt.hour.to_numpy(float), created.dt.day_of_week.to_numpy(float)])
        return np.hstack([onehot, time])

    def level(self, flair: object) -> str:
        """The fitted level a flair is scored as: itself normalized, or 'other' when training did not learn it."""
        require_fitted(self, "flairs_")
        normalized = normalize_flair(flair)
        return normalized if normalized in self.flair_index_ else RARE_FLAIR

    def transform_row(self, row: PostRow) -> np.ndarray:
        require_fitted(self, "flairs_")
        out = np.zeros(len(self.flairs_) + 2)
        out[self.flair_index_[self.level(row.flair)]] = 1.0
        created = row.created_utc.astimezone(UTC)
        out[-2:] = created.hour, created.weekday()
        return out

    def unknown_flair_weights(self) -> dict[str, float]:
        """Flair levels and weights to average over when the flair is unknown: the training shares of
        every level but "none" (posts published without a flair are a separate, known case)."""
        require_fitted(self, "flairs_")
        shares = {f: s for f, s in self.flair_shares_.items() if f != NO_FLAIR and s > 0}
        total = sum(shares.values())
        return {f: s / total for f, s in shares.items()}

    @property
    def feature_names(self) -> list[str]:
        require_fitted(self, "flairs_")
        return [f"flair_{safe_name(f)}" for f in self.flairs_] + ["hour_utc", "weekday_utc"]

    def to_dict(self) -> dict[str, Any]:
        require_fitted(self, "flairs_")
        return {"min_count": self.min_count, "flairs": self.flairs_, "flair_shares": self.flair_shares_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        return cls(min_count=state["min_count"])._set_state(list(state["flairs"]), dict(state["flair_shares"]))


class TimeTrendFeatures(StatelessGroup):
    """Posting time as a decimal year. Off by default: it mostly tells old 'top' posts from new ones."""

    name: ClassVar[str] = "time_trend"
    reads_as: ClassVar[str] = "the posting date"
    reads_text: ClassVar[bool] = False

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        created = pd.to_datetime(posts["created_utc"], utc=True)
        year = created.dt.year.to_numpy(float) + (created.dt.day_of_year.to_numpy(float) - 1) / 366.0
        return year.reshape(-1, 1)

    def transform_row(self, row: PostRow) -> np.ndarray:
        created = row.created_utc.astimezone(UTC)
        return np.array([created.year + (created.timetuple().tm_yday - 1) / 366.0])

    @property
    def feature_names(self) -> list[str]:
        return ["posted_year"]
