"""Reference points evaluated on the same folds as the model."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

from hybrid_scorer.config import DEFAULT_SEED
from hybrid_scorer.features.matrix import FeatureMatrix
from hybrid_scorer.target import log_target


class MedianBaseline:
    """Predicts the training median of log1p(score) for every post."""

    def fit(self, posts: pd.DataFrame) -> Self:
        self.median_ = float(np.median(log_target(posts)))
        return self

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray:
        return np.full(len(posts), self.median_)


class RandomForestBaseline:
    """What public solutions of this task did: TF-IDF + text statistics into a RandomForest
    (here on log1p(score) and without upvote_ratio, so the comparison is fair)."""

    def __init__(self, n_estimators: int = 200, seed: int = DEFAULT_SEED) -> None:
        self.n_estimators = n_estimators
        self.seed = seed

    def fit(self, posts: pd.DataFrame) -> Self:
        self.features_ = FeatureMatrix(["text_stats", "tfidf"], {"tfidf": {"max_features": 1000}})
        y = log_target(posts)
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators, max_features="sqrt", min_samples_leaf=2, n_jobs=2, random_state=self.seed
        ).fit(self.features_.fit_transform(posts, y), y)
        return self

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray:
        return self.forest_.predict(self.features_.transform(posts))
