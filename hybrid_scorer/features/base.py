"""The shape every feature group has: a scikit-learn-style transformer with two paths over one fitted
state, which saves itself as JSON.

The batch path (`transform`, DataFrames) serves training and the ablation; the row path (`transform_row`,
one `PostRow` -> a numpy block) serves `predict()` and the service, without pandas or scipy.sparse.
`bench/parity.py` and `tests/test_row_path.py` prove the two equal post by post. A group also declares
what it needs (`needs`: which LLM outputs), whether it learns from the labels (`supervised`) and its
`width`, so nothing else in the package keeps a list of groups."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.exceptions import NotFittedError

from hybrid_scorer.llm.usage import LLMOutput


def require_fitted(estimator: object, attribute: str) -> None:
    """scikit-learn's contract: using an unfitted estimator raises NotFittedError, never empty output.
    (sklearn's own check_is_fitted needs BaseEstimator's tags, which these plain classes do not carry.)"""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet: call fit() first, or load a saved model"
        )


_UNSAFE = re.compile(r"[^0-9A-Za-z_]+")


def safe_name(name: str) -> str:
    """LightGBM rejects some characters in feature names; keep names readable and legal."""
    return _UNSAFE.sub("_", name).strip("_")


@dataclass(frozen=True)
class PostRow:
    """One post as the row path reads it: the cleaned title and body (data.clean_fields), the
    HTML-unescaped raw body cut at its first edit (links and paragraphs are counted there), the flair as
    given (None: unknown to the caller, "": published without one), the posting time (aware, any zone)
    and the post's LLM outputs under the batch path's column names (`llm_*` values, and the embedding
    vector)."""

    title_clean: str
    body_clean: str
    body: str
    flair: str | None
    created_utc: datetime
    llm: Mapping[str, Any] = field(default_factory=dict)


class FeatureGroup(Protocol):
    """fit on training posts only, transform any posts (batch) or one post (row), round-trip through JSON."""

    name: ClassVar[str]
    reads_as: ClassVar[str]  # what it reads, in a poster's words (the page and the CLI say this, not `name`)
    needs: ClassVar[frozenset[LLMOutput]]  # the LLM outputs it reads (empty: none)
    supervised: ClassVar[bool]  # learns from the labels: fit_transform gives the training rows out-of-fold values
    reads_text: ClassVar[bool]  # its row depends on the title or body (False: on the flair, time or LLM outputs)

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self: ...

    def transform(self, posts: pd.DataFrame) -> sparse.csr_matrix | np.ndarray: ...

    def fit_transform(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> sparse.csr_matrix | np.ndarray: ...

    def transform_row(self, row: PostRow) -> np.ndarray:
        """This group's block of one post's feature vector (float64, NaN where a value is missing)."""
        ...

    def transform_rows(self, rows: Sequence[PostRow]) -> np.ndarray:
        """transform_row of each of `rows`, one per line (the steering check's variants of one post)."""
        ...

    @property
    def width(self) -> int:
        """Number of columns (fitted)."""
        ...

    @property
    def embedding_width(self) -> int | None:
        """For a group that needs the embedding: the width of the vectors it was fitted on."""
        ...

    @property
    def feature_names(self) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self: ...


class GroupBase(ABC):
    """What most groups share: no LLM output needed, no labels learnt, `fit_transform` as fit then
    transform, `width` from the feature names. A group that differs overrides the declaration."""

    name: ClassVar[str] = ""
    reads_as: ClassVar[str] = ""
    needs: ClassVar[frozenset[LLMOutput]] = frozenset()
    supervised: ClassVar[bool] = False
    reads_text: ClassVar[bool] = True  # the safe default: a group that says nothing is recomputed

    @abstractmethod
    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self: ...

    @abstractmethod
    def transform(self, posts: pd.DataFrame) -> sparse.csr_matrix | np.ndarray: ...

    @abstractmethod
    def transform_row(self, row: PostRow) -> np.ndarray: ...

    def transform_rows(self, rows: Sequence[PostRow]) -> np.ndarray:
        return np.asarray([self.transform_row(row) for row in rows], dtype=np.float64).reshape(len(rows), self.width)

    def fit_transform(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> sparse.csr_matrix | np.ndarray:
        return self.fit(posts, y).transform(posts)

    @property
    @abstractmethod
    def feature_names(self) -> list[str]: ...

    @property
    def width(self) -> int:
        return len(self.feature_names)

    @property
    def embedding_width(self) -> int | None:
        return None


class StatelessGroup(GroupBase):
    """Base for groups that learn nothing from the training data."""

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        return self

    def to_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        return cls()
