"""Assemble named feature groups into one sparse matrix; the unit the model fits and saves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import sparse

from hybrid_scorer.features.base import FeatureGroup, require_fitted
from hybrid_scorer.features.embedding import EmbeddingFeatures
from hybrid_scorer.features.llm import LLMQuestionFeatures, LLMRatingFeatures
from hybrid_scorer.features.meta import MetaFeatures, TimeTrendFeatures
from hybrid_scorer.features.stacked import EmbeddingStackFeatures
from hybrid_scorer.features.text import TextStatsFeatures
from hybrid_scorer.features.tfidf import TfidfFeatures

GROUPS: dict[str, type[FeatureGroup]] = {
    cls.name: cls  # type: ignore[misc]
    for cls in (
        TextStatsFeatures,
        TfidfFeatures,
        MetaFeatures,
        TimeTrendFeatures,
        LLMRatingFeatures,
        LLMQuestionFeatures,
        EmbeddingFeatures,
        EmbeddingStackFeatures,
    )
}
CONTENT_GROUPS = ("text_stats", "tfidf", "meta")


def make_group(name: str, options: dict[str, Any] | None = None) -> FeatureGroup:
    if name not in GROUPS:
        raise ValueError(f"unknown feature group {name!r}; choose from {sorted(GROUPS)}")
    return GROUPS[name](**(options or {}).get(name, {}))  # type: ignore[call-arg]


class FeatureMatrix:
    """fit/transform over several groups, keeping which column came from which group."""

    def __init__(self, groups: Sequence[str], options: dict[str, Any] | None = None) -> None:
        self.groups = groups
        self.options = options

    def fit(self, posts: pd.DataFrame) -> Self:
        return self._set_fitted([make_group(name, self.options).fit(posts) for name in self.groups])

    def _set_fitted(self, fitted: list[FeatureGroup]) -> Self:
        self.fitted_ = fitted
        # which group each column belongs to, computed once (feature names cost a regex per TF-IDF term)
        self.column_groups_ = [g.name for g in fitted for _ in g.feature_names]
        return self

    def transform(self, posts: pd.DataFrame) -> sparse.csr_matrix:
        require_fitted(self, "fitted_")
        blocks = [_as_sparse(g.transform(posts)) for g in self.fitted_]
        return sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((len(posts), 0))

    def fit_transform(self, posts: pd.DataFrame) -> sparse.csr_matrix:
        """The training matrix. A group with its own fit_transform (one that learns from the labels)
        returns out-of-fold values for the training rows, which fit().transform() would not."""
        fitted, blocks = [], []
        for name in self.groups:
            group = make_group(name, self.options)
            if hasattr(group, "fit_transform"):
                blocks.append(group.fit_transform(posts))
            else:
                blocks.append(group.fit(posts).transform(posts))
            fitted.append(group)
        self._set_fitted(fitted)
        return (
            sparse.hstack([_as_sparse(b) for b in blocks], format="csr")
            if blocks
            else sparse.csr_matrix((len(posts), 0))
        )

    def group(self, name: str) -> FeatureGroup | None:
        """The fitted group of that name, if the matrix has it."""
        require_fitted(self, "fitted_")
        return next((g for g in self.fitted_ if g.name == name), None)

    def column_offset(self, name: str) -> int:
        """Index of the first column of group `name` in the matrix."""
        require_fitted(self, "fitted_")
        return self.column_groups_.index(name)

    @property
    def feature_names(self) -> list[str]:
        require_fitted(self, "fitted_")
        return [n for g in self.fitted_ for n in g.feature_names]

    @property
    def feature_groups(self) -> list[str]:
        """The group of each column, aligned with feature_names."""
        require_fitted(self, "fitted_")
        return list(self.column_groups_)

    def to_dict(self) -> dict[str, Any]:
        require_fitted(self, "fitted_")
        return {
            "groups": list(self.groups),
            "options": self.options or {},
            "state": [g.to_dict() for g in self.fitted_],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        matrix = cls(state["groups"], state["options"])
        return matrix._set_fitted(
            [GROUPS[n].from_dict(s) for n, s in zip(state["groups"], state["state"], strict=True)]
        )


def _as_sparse(block: sparse.spmatrix | np.ndarray) -> sparse.csr_matrix:
    """Dense blocks keep their NaNs as explicit entries (LightGBM reads NaN as missing)."""
    return sparse.csr_matrix(block if sparse.issparse(block) else np.asarray(block, dtype=np.float64))
