"""LLM outputs as model columns: the assessment ratings (integer and probability-weighted), topic, and
the answers to a prompt's yes/no questions (P(yes)).

`attach_llm_columns` joins the extraction table onto the posts; the groups below only read columns,
so the model never knows which backend produced them. A failed extraction stays NaN."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from hybrid_scorer.errors import ConfigurationError
from hybrid_scorer.features.base import GroupBase, PostRow, StatelessGroup, require_fitted, safe_name
from hybrid_scorer.llm.schema import QUESTION_PREFIX, RATING_FIELDS, Topic, question_columns
from hybrid_scorer.llm.usage import LLMOutput

PREFIX = "llm_"
EMBEDDING_COLUMN = "llm_embedding"


def _model_columns(table_columns: Iterable[str]) -> list[str]:
    """The columns of an extraction table (llm/extract.py's assessment_row) that features read."""
    present = list(table_columns)
    asked = [c for c in present if c.startswith(QUESTION_PREFIX)]
    return [c for c in (*rating_columns(), "topic", *asked) if c in present]


def attach_llm_columns(
    posts: pd.DataFrame, assessments: pd.DataFrame | None = None, embeddings: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Posts plus `llm_*` columns from an extraction table keyed by post_id and/or embedding vectors."""
    out = posts.copy()
    if assessments is not None:
        values = assessments.set_index("post_id")
        wanted = _model_columns(values.columns)
        joined = values[wanted].reindex(out["post_id"])
        for column in wanted:
            out[PREFIX + column] = joined[column].to_numpy()
    if embeddings is not None:
        out[EMBEDDING_COLUMN] = [embeddings.get(pid) for pid in out["post_id"]]
    return out


def llm_row_values(assessment: Mapping[str, Any] | None, embedding: np.ndarray | None) -> dict[str, Any]:
    """One post's `llm_*` values for the row path, named as attach_llm_columns names them, from its
    extraction-table row (None: no assessment) and its embedding (None: none)."""
    out = {PREFIX + c: assessment[c] for c in _model_columns(assessment)} if assessment is not None else {}
    if embedding is not None:
        out[EMBEDDING_COLUMN] = embedding
    return out


def _number(value: object) -> float:
    """A value of an `llm_*` column as a float (pd.to_numeric's reading: None and missing are NaN)."""
    return float(value) if isinstance(value, int | float | np.number) else math.nan


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def rating_columns() -> list[str]:
    return [*RATING_FIELDS, *(f"{f}_expected" for f in RATING_FIELDS)]


def _column(posts: pd.DataFrame, name: str) -> pd.Series:
    """An `llm_*` column, or all missing when the posts carry none (e.g. every extraction failed)."""
    return posts.get(PREFIX + name, pd.Series(np.nan, index=posts.index, dtype=object))


class LLMRatingFeatures(StatelessGroup):
    """question_clarity / novelty / predicted_interest as integers and as expectations over the digit
    probabilities (small models put most mass on one digit; the expectation keeps the rest), plus topic."""

    name: ClassVar[str] = "llm_ratings"
    reads_as: ClassVar[str] = "the LLM's ratings of the question"
    reads_text: ClassVar[bool] = False
    needs: ClassVar[frozenset[LLMOutput]] = frozenset({LLMOutput.ASSESSMENT})
    topics: ClassVar[list[str]] = [t.value for t in Topic]

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        ratings = np.column_stack([pd.to_numeric(_column(posts, c)).to_numpy(float) for c in rating_columns()])
        topic = _column(posts, "topic")
        onehot = (topic.to_numpy()[:, None] == np.asarray(self.topics)[None, :]).astype(np.float64)
        onehot[topic.isna().to_numpy()] = np.nan
        return np.hstack([ratings, onehot])

    def transform_row(self, row: PostRow) -> np.ndarray:
        ratings = [_number(row.llm.get(PREFIX + c)) for c in rating_columns()]
        topic = row.llm.get(PREFIX + "topic")
        onehot = [math.nan if _is_missing(topic) else float(topic == t) for t in self.topics]
        return np.array(ratings + onehot)

    @property
    def feature_names(self) -> list[str]:
        return [PREFIX + c for c in rating_columns()] + [f"{PREFIX}topic_{safe_name(t)}" for t in self.topics]


class LLMQuestionFeatures(GroupBase):
    """P(yes) for each yes/no question of the prompt (prompt versions with `questions.json`), falling
    back to the answer itself where a backend gave no probabilities. Which questions: those the training
    posts were asked, saved with the model (serving refuses another prompt: see the manifest check)."""

    name: ClassVar[str] = "llm_questions"
    reads_as: ClassVar[str] = "the LLM's answers about the question"
    reads_text: ClassVar[bool] = False
    needs: ClassVar[frozenset[LLMOutput]] = frozenset({LLMOutput.ASSESSMENT})

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        marker = PREFIX + QUESTION_PREFIX
        found = [c[len(marker) :] for c in posts.columns if c.startswith(marker) and not c.endswith("_expected")]
        if not found:
            raise ConfigurationError(
                f"feature group {self.name!r} needs answers to yes/no questions, and these posts have none:"
                " use a prompt that asks them (--prompt assessment_v3)"
            )
        self.questions_ = found
        return self

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        require_fitted(self, "questions_")
        columns = []
        for name in self.questions_:
            answer, p_yes = (pd.to_numeric(_column(posts, c)).to_numpy(float) for c in question_columns(name))
            columns.append(np.where(np.isnan(p_yes), answer, p_yes))
        return np.column_stack(columns) if columns else np.empty((len(posts), 0))

    def transform_row(self, row: PostRow) -> np.ndarray:
        require_fitted(self, "questions_")
        values = []
        for name in self.questions_:
            answer, p_yes = (_number(row.llm.get(PREFIX + c)) for c in question_columns(name))
            values.append(answer if math.isnan(p_yes) else p_yes)
        return np.array(values, dtype=np.float64)

    @property
    def feature_names(self) -> list[str]:
        require_fitted(self, "questions_")
        return [PREFIX + safe_name(question_columns(n)[0]) for n in self.questions_]

    def to_dict(self) -> dict[str, Any]:
        require_fitted(self, "questions_")
        return {"questions": self.questions_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        group = cls()
        group.questions_ = list(state["questions"])
        return group
