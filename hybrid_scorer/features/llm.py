"""LLM outputs as model columns: the assessment ratings (integer and probability-weighted) and topic.

`attach_llm_columns` joins the extraction table onto the posts; the groups below only read columns,
so the model never knows which backend produced them. A failed extraction stays NaN."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from hybrid_scorer.features.base import StatelessGroup, safe_name
from hybrid_scorer.llm.schema import RATING_FIELDS, Topic

PREFIX = "llm_"
EMBEDDING_COLUMN = "llm_embedding"


def attach_llm_columns(
    posts: pd.DataFrame, assessments: pd.DataFrame | None = None, embeddings: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Posts plus `llm_*` columns from an extraction table keyed by post_id and/or embedding vectors."""
    out = posts.copy()
    if assessments is not None:
        values = assessments.set_index("post_id")
        wanted = [c for c in (*rating_columns(), "topic") if c in values.columns]
        joined = values[wanted].reindex(out["post_id"])
        for column in wanted:
            out[PREFIX + column] = joined[column].to_numpy()
    if embeddings is not None:
        out[EMBEDDING_COLUMN] = [embeddings.get(pid) for pid in out["post_id"]]
    return out


def rating_columns() -> list[str]:
    return [*RATING_FIELDS, *(f"{f}_expected" for f in RATING_FIELDS)]


def _column(posts: pd.DataFrame, name: str) -> pd.Series:
    """An `llm_*` column, or all missing when the posts carry none (e.g. every extraction failed)."""
    return posts.get(PREFIX + name, pd.Series(np.nan, index=posts.index, dtype=object))


class LLMRatingFeatures(StatelessGroup):
    """question_clarity / novelty / predicted_interest as integers and as expectations over the digit
    probabilities (small models put most mass on one digit; the expectation keeps the rest), plus topic."""

    name: ClassVar[str] = "llm_ratings"
    topics: ClassVar[list[str]] = [t.value for t in Topic]

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        ratings = np.column_stack([pd.to_numeric(_column(posts, c)).to_numpy(float) for c in rating_columns()])
        topic = _column(posts, "topic")
        onehot = (topic.to_numpy()[:, None] == np.asarray(self.topics)[None, :]).astype(np.float64)
        onehot[topic.isna().to_numpy()] = np.nan
        return np.hstack([ratings, onehot])

    @property
    def feature_names(self) -> list[str]:
        return [PREFIX + c for c in rating_columns()] + [f"{PREFIX}topic_{safe_name(t)}" for t in self.topics]
