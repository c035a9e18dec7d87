"""An experiment's feature group that is one stacked column: a learner fitted on log1p(score), its
prediction out of fold for the training rows (grouped inner folds, as the served llm_stack does) and the
learner fitted on every training row for new rows. Batch path only: never served or saved.

A subclass says what the learner reads (`inputs`: one entry per post that has it, and which posts do)
and how it learns (`learn`: anything with `predict(inputs)`); the out-of-fold loop is here once."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from hybrid_scorer.data import fold_groups
from hybrid_scorer.features.base import GroupBase, PostRow


class Learner(Protocol):
    def predict(self, inputs: Any) -> np.ndarray: ...


def ragged(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-post arrays of different lengths as one object array, so a fold's rows index like a matrix's."""
    out = np.empty(len(arrays), dtype=object)
    for i, array in enumerate(arrays):  # item by item: arrays of one shape would otherwise become a block
        out[i] = array
    return out


class OutOfFoldColumn(GroupBase):
    supervised: ClassVar[bool] = True
    inner_folds: int

    @abstractmethod
    def inputs(self, posts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(the learner's input for the posts that have one, a mask of those posts)."""

    @abstractmethod
    def learn(self, inputs: np.ndarray, target: np.ndarray) -> Learner: ...

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        inputs, present = self.inputs(posts)
        self.model_ = self.learn(inputs, np.asarray(y, dtype=np.float64)[present])
        return self

    def fit_transform(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> np.ndarray:
        inputs, present = self.inputs(posts)
        target = np.asarray(y, dtype=np.float64)[present]
        inner = np.full(len(inputs), np.nan)
        splits = GroupKFold(n_splits=self.inner_folds).split(inputs, groups=fold_groups(posts[present]))
        for train, held_out in splits:
            inner[held_out] = self.learn(inputs[train], target[train]).predict(inputs[held_out])
        self.model_ = self.learn(inputs, target)
        out = np.full((len(posts), 1), np.nan)
        out[present, 0] = inner
        return out

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        inputs, present = self.inputs(posts)
        out = np.full((len(posts), 1), np.nan)
        if present.any():
            out[present, 0] = self.model_.predict(inputs)
        return out

    def transform_row(self, row: PostRow) -> np.ndarray:
        raise NotImplementedError("an experiment's group: batch path only")

    @property
    def feature_names(self) -> list[str]:
        return [self.name]

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError("an experiment's group: never saved")

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        raise NotImplementedError("an experiment's group: never saved")
