"""The shape every feature group has: a scikit-learn-style transformer that saves itself as JSON."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.exceptions import NotFittedError


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


class FeatureGroup(Protocol):
    """fit on training posts only, transform any posts, and round-trip through plain JSON."""

    name: ClassVar[str]

    def fit(self, posts: pd.DataFrame) -> Self: ...

    def transform(self, posts: pd.DataFrame) -> sparse.csr_matrix | np.ndarray: ...

    @property
    def feature_names(self) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self: ...


class StatelessGroup:
    """Base for groups that learn nothing from the training data."""

    name: ClassVar[str] = ""

    def fit(self, posts: pd.DataFrame) -> Self:
        return self

    def to_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        return cls()
