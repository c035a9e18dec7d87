"""The target the models learn, in one place: log1p(score), and back to the score scale.

Scores span 0 to ~83,000 with a median of 18 and two modes; on the log scale squared errors weigh a
post of 10 and one of 10,000 alike, which is what ranking posts needs."""

from __future__ import annotations

from typing import Protocol, Self

import numpy as np
import pandas as pd

TOP_SCORE = 1000  # where the upper of the score's two modes begins (mostly old "top" posts)


def log_target(scores: pd.DataFrame | pd.Series | np.ndarray) -> np.ndarray:
    """log1p of the scores (a frame of posts gives its `score` column)."""
    values = scores["score"] if isinstance(scores, pd.DataFrame) else scores
    return np.log1p(np.asarray(values, dtype=np.float64))


def to_score(log_values: np.ndarray | float) -> np.ndarray:
    """Scores from log1p values, never below 0 (a log prediction can be slightly negative)."""
    return np.maximum(np.expm1(np.asarray(log_values, dtype=np.float64)), 0.0)  # np.clip, without its wrapper's cost


class LogScoreEstimator(Protocol):
    """What is fitted on posts and predicts log1p(score): a HybridScorer, or a baseline to compare with."""

    def fit(self, posts: pd.DataFrame) -> Self: ...

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray: ...
