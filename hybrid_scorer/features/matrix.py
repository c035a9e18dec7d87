"""Assemble named feature groups into one matrix (batch) or one vector (row); the unit the model fits
and saves. GROUPS is the registry: adding a feature group is one file plus one line here."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import sparse

from hybrid_scorer.errors import ConfigurationError
from hybrid_scorer.features.base import FeatureGroup, PostRow, require_fitted
from hybrid_scorer.features.embedding import EmbeddingFeatures
from hybrid_scorer.features.llm import LLMQuestionFeatures, LLMRatingFeatures
from hybrid_scorer.features.meta import MetaFeatures, TimeTrendFeatures
from hybrid_scorer.features.stacked import EmbeddingStackFeatures
from hybrid_scorer.features.text import TextStatsFeatures
from hybrid_scorer.features.tfidf import TfidfFeatures
from hybrid_scorer.llm.usage import LLMOutput

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


def group_class(name: str) -> type[FeatureGroup]:
    if name not in GROUPS:
        raise ConfigurationError(f"unknown feature group {name!r}; choose from {sorted(GROUPS)}")
    return GROUPS[name]


def make_group(name: str, options: dict[str, Any] | None = None) -> FeatureGroup:
    return group_class(name)(**(options or {}).get(name, {}))  # type: ignore[call-arg]


def llm_needs(groups: Sequence[str]) -> frozenset[LLMOutput]:
    """Every LLM output these feature groups read, as the groups declare it."""
    return frozenset().union(*(group_class(g).needs for g in groups))


def groups_needing(output: LLMOutput, groups: Sequence[str] | None = None) -> list[str]:
    """The groups (of `groups`, default: all registered) that read this LLM output."""
    return [g for g in (GROUPS if groups is None else groups) if output in group_class(g).needs]


def _repeated(block: np.ndarray, lines: int) -> np.ndarray:
    return np.broadcast_to(block, (lines, block.size))


class FeatureMatrix:
    """fit/transform over several groups, keeping which column came from which group."""

    def __init__(self, groups: Sequence[str], options: dict[str, Any] | None = None) -> None:
        self.groups = groups
        self.options = options

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        return self._set_fitted([make_group(name, self.options).fit(posts, y) for name in self.groups])

    def _set_fitted(self, fitted: list[FeatureGroup]) -> Self:
        self.fitted_ = fitted
        # which group each column belongs to, computed once
        self.column_groups_ = [g.name for g in fitted for _ in range(g.width)]
        offsets = np.cumsum([0, *(g.width for g in fitted)])
        self.spans_ = [slice(int(a), int(b)) for a, b in itertools.pairwise(offsets)]
        return self

    def transform(self, posts: pd.DataFrame) -> sparse.csr_matrix:
        require_fitted(self, "fitted_")
        return _stack([g.transform(posts) for g in self.fitted_], len(posts))

    def transform_row(self, row: PostRow) -> np.ndarray:
        """One post's feature vector (float64, NaN where missing): the row path of every group."""
        require_fitted(self, "fitted_")
        return np.concatenate([g.transform_row(row) for g in self.fitted_]) if self.fitted_ else np.empty(0)

    def transform_variants(
        self, row: PostRow, variants: Sequence[PostRow], base: np.ndarray | None = None
    ) -> np.ndarray:
        """The feature vectors of `variants`, rows that differ from `row` in their text and LLM outputs only,
        one per line: the blocks of groups that read neither what changed are computed once, from `row`, or
        read from `base`, `row`'s own vector when the caller has it (the steering check scores a post once
        per sentence left out; a title's variants carry their own LLM outputs)."""
        require_fitted(self, "fitted_")
        llm_changed = any(v.llm is not row.llm for v in variants)

        def varies(group: FeatureGroup) -> bool:
            return group.reads_text or (llm_changed and bool(group.needs))

        def own(group: FeatureGroup, span: slice) -> np.ndarray:
            return group.transform_row(row) if base is None else base[span]

        blocks = [
            g.transform_rows(variants) if varies(g) else _repeated(own(g, span), len(variants))
            for g, span in zip(self.fitted_, self.spans_, strict=True)
        ]
        return np.hstack(blocks) if blocks else np.empty((len(variants), 0))

    def fit_transform(self, posts: pd.DataFrame, y: np.ndarray) -> sparse.csr_matrix:
        """The training matrix. A supervised group (one that learns from the labels `y`) returns
        out-of-fold values for the training rows, which fit().transform() would not."""
        fitted = [make_group(name, self.options) for name in self.groups]
        blocks = [group.fit_transform(posts, y) for group in fitted]
        self._set_fitted(fitted)
        return _stack(blocks, len(posts))

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
            [group_class(n).from_dict(s) for n, s in zip(state["groups"], state["state"], strict=True)]
        )


def _as_sparse(block: sparse.spmatrix | np.ndarray) -> sparse.csr_matrix:
    """Dense blocks keep their NaNs as explicit entries (LightGBM reads NaN as missing)."""
    return sparse.csr_matrix(block if sparse.issparse(block) else np.asarray(block, dtype=np.float64))


def _stack(blocks: list[sparse.spmatrix | np.ndarray], n_rows: int) -> sparse.csr_matrix:
    return sparse.hstack([_as_sparse(b) for b in blocks], format="csr") if blocks else sparse.csr_matrix((n_rows, 0))
