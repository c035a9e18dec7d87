"""Target features stacked on the LLM embedding: what a ridge regression on the whole vector, and the
scores of the most similar training posts, say about a post's score, as a few columns for LightGBM.

PCA keeps the directions of largest variance, not those that predict the score; a ridge on all 576
dimensions and a nearest-neighbour vote read the score directions directly. Both learn from labels, so
both follow scikit-learn's TargetEncoder contract: `fit_transform` on the training rows returns
out-of-fold values from inner folds (grouped by normalized title, as the outer folds are), so no
training row's feature has seen its own label or a repost's; `transform` on new rows uses the model
fitted on every training row. Saved as JSON: the ridge's coefficients, and the training vectors
(float16, base64) with their log scores for the neighbour search."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupKFold

from hybrid_scorer.data import fold_groups
from hybrid_scorer.errors import ConfigurationError
from hybrid_scorer.features.base import GroupBase, PostRow, require_fitted
from hybrid_scorer.features.embedding import row_vector, stack_embeddings, trained_width_rows
from hybrid_scorer.llm.usage import LLMOutput

ALPHAS = tuple(float(a) for a in np.logspace(0, 5, 11))
# The neighbour search first bounds every similarity from the leading coordinates of a rotated basis
# (float32) and the norms of the rest (Cauchy-Schwarz), then ranks the few neighbours the bounds cannot rule
# out in float64 (~150 of ~3,700 on this data with _HEAD = 256, ~500 with 128; the search takes about half
# the time). _FLOAT32_ERROR is above the float32 error of a dot product of two vectors of norm <= 1 and
# width 256 (at most 256 * 2**-24 = 1.5e-5) and the rounding of the norms of the rest.
_HEAD = 256
_FLOAT32_ERROR = 1e-4


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def _row_medians(values: np.ndarray) -> np.ndarray:
    """np.median(values, axis=1), the same numbers, by one sort (np.median's own dispatch costs more than
    the sort on the row path's one row of 30)."""
    ordered = np.sort(values, axis=1)
    half = values.shape[1] // 2
    return ordered[:, half] if values.shape[1] % 2 else (ordered[:, half - 1] + ordered[:, half]) / 2


@dataclass
class _Fitted:
    """One fitted state: standardizer + ridge, and the neighbour set (unit vectors, log scores)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    neighbours: np.ndarray  # float16: what is saved, so fit and load search the same values
    targets: np.ndarray

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Computed once per fitted state: the first _HEAD vectors of an orthonormal basis ordered by the
        neighbours' energy along it, the neighbours' coordinates on them (float32), the norm of their
        other coordinates, and the neighbours widened to float32 (exactly: float16 values are float32
        values) for the final float64 ranking."""
        neighbours = self.neighbours.astype(np.float64)
        _, vectors = np.linalg.eigh(neighbours.T @ neighbours)
        head = min(_HEAD, vectors.shape[1])
        basis = np.ascontiguousarray(vectors[:, ::-1][:, :head])
        coordinates = neighbours @ basis
        # float16 rounding leaves the neighbours' norms ~1e-3 off 1: their own squared norms, not 1
        squared = np.einsum("ij,ij->i", neighbours, neighbours) - np.einsum("ij,ij->i", coordinates, coordinates)
        rest = np.sqrt(np.clip(squared, 0.0, None))
        return basis, coordinates.astype(np.float32), rest, self.neighbours.astype(np.float32)

    @classmethod
    def fit(cls, matrix: np.ndarray, target: np.ndarray, alphas: tuple[float, ...]) -> _Fitted:
        """The ridge's penalty is chosen among `alphas` by leave-one-out on these rows only (RidgeCV's
        closed form): a choice made inside the training rows, never on the rows it is scored on."""
        mean, scale = matrix.mean(axis=0), matrix.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        ridge = RidgeCV(alphas=alphas).fit((matrix - mean) / scale, target)
        neighbours = _unit(matrix).astype(np.float16)
        return cls(mean, scale, ridge.coef_, float(ridge.intercept_), neighbours, target)

    def nearest(self, units: np.ndarray, k: int) -> np.ndarray:
        """Indices of the k most similar neighbours of each unit row, most similar first (ties: lower
        index first): exactly the ranking of a float64 search over all neighbours. In the rotated basis a
        similarity is the dot product of the leading coordinates plus that of the rest, and the latter is
        at most the product of their norms; every neighbour whose upper bound reaches the k-th largest
        lower bound is ranked in float64, every other one is provably outside the k nearest."""
        basis, heads, tails, widened = self._bounds
        coordinates = units @ basis
        approx = coordinates.astype(np.float32) @ heads.T
        # the norm of the rest from Pythagoras (the basis is orthonormal, rows are unit vectors)
        rest = np.sqrt(np.clip(1.0 - np.einsum("ij,ij->i", coordinates, coordinates), 0.0, None))
        slack = rest[:, None] * tails[None, :] + _FLOAT32_ERROR
        n = approx.shape[1]
        out = np.empty((len(units), k), dtype=np.intp)
        for i in range(len(units)):
            threshold = np.partition(approx[i] - slack[i], n - k)[n - k]  # the k-th largest lower bound
            chosen = np.flatnonzero(approx[i] + slack[i] >= threshold)
            exact = widened[chosen].astype(np.float64) @ units[i]
            out[i] = chosen[np.lexsort((chosen, -exact))[:k]]
        return out

    def features(self, matrix: np.ndarray, ks: tuple[int, ...]) -> np.ndarray:
        ridge = ((matrix - self.mean) / self.scale) @ self.coef + self.intercept
        scores = self.targets[self.nearest(_unit(matrix), min(max(ks), len(self.targets)))]
        columns = [ridge]
        for k in ks:
            columns += [scores[:, :k].mean(axis=1), _row_medians(scores[:, :k])]
        return np.column_stack(columns)


class EmbeddingStackFeatures(GroupBase):
    """Out-of-fold ridge prediction and k-nearest-neighbour mean/median log score over the embedding."""

    name: ClassVar[str] = "llm_stack"
    reads_as: ClassVar[str] = "how posts the LLM read alike have scored"
    reads_text: ClassVar[bool] = False
    needs: ClassVar[frozenset[LLMOutput]] = frozenset({LLMOutput.EMBEDDING})
    supervised: ClassVar[bool] = True

    def __init__(
        self, alphas: tuple[float, ...] = ALPHAS, ks: tuple[int, ...] = (10, 30), inner_folds: int = 5
    ) -> None:
        self.alphas = tuple(alphas)
        self.ks = tuple(ks)
        self.inner_folds = inner_folds

    def _training_rows(self, posts: pd.DataFrame, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if y is None:
            raise ValueError(f"feature group '{self.name}' learns from the labels: fit it with y (log1p scores)")
        matrix, present = stack_embeddings(posts)
        if len(matrix) <= max(self.ks):
            raise ConfigurationError(
                f"feature group '{self.name}' needs embeddings for more than {max(self.ks)} training posts;"
                " run `hybrid-scorer extract` first or drop the group"
            )
        return matrix, present, np.asarray(y, dtype=np.float64)[present]

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        matrix, _, target = self._training_rows(posts, y)
        self.state_ = _Fitted.fit(matrix, target, self.alphas)
        return self

    def fit_transform(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> np.ndarray:
        """Out-of-fold values for the training rows themselves (see the module docstring)."""
        matrix, present, target = self._training_rows(posts, y)
        inner = np.full((len(matrix), len(self.feature_names_for(self.ks))), np.nan)
        groups = fold_groups(posts[present])
        for train, held_out in GroupKFold(n_splits=self.inner_folds).split(matrix, groups=groups):
            inner[held_out] = _Fitted.fit(matrix[train], target[train], self.alphas).features(matrix[held_out], self.ks)
        self.state_ = _Fitted.fit(matrix, target, self.alphas)
        out = np.full((len(posts), inner.shape[1]), np.nan)
        out[present] = inner
        return out

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        require_fitted(self, "state_")
        out = np.full((len(posts), len(self.feature_names)), np.nan)
        matrix, present = trained_width_rows(posts, self.embedding_width, "stack")
        if present.any():
            out[present] = self.state_.features(matrix, self.ks)
        return out

    def transform_row(self, row: PostRow) -> np.ndarray:
        require_fitted(self, "state_")
        vector = row_vector(row, self.embedding_width, "stack")
        if vector is None:
            return np.full(len(self.feature_names), np.nan)
        return self.state_.features(vector, self.ks)[0]

    @property
    def embedding_width(self) -> int:
        require_fitted(self, "state_")
        return int(self.state_.coef.shape[0])

    @staticmethod
    def feature_names_for(ks: tuple[int, ...]) -> list[str]:
        return ["llm_stack_ridge"] + [f"llm_stack_knn{k}_{stat}" for k in ks for stat in ("mean", "median")]

    @property
    def feature_names(self) -> list[str]:
        require_fitted(self, "state_")
        return self.feature_names_for(self.ks)

    def to_dict(self) -> dict[str, Any]:
        require_fitted(self, "state_")
        state = self.state_
        return {
            "alphas": list(self.alphas),
            "ks": list(self.ks),
            "inner_folds": self.inner_folds,
            "mean": state.mean.tolist(),
            "scale": state.scale.tolist(),
            "coef": state.coef.tolist(),
            "intercept": state.intercept,
            "neighbours_float16": base64.b64encode(state.neighbours.tobytes()).decode(),
            "targets": state.targets.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        group = cls(alphas=tuple(state["alphas"]), ks=tuple(state["ks"]), inner_folds=state["inner_folds"])
        coef = np.asarray(state["coef"], dtype=np.float64)
        neighbours = np.frombuffer(base64.b64decode(state["neighbours_float16"]), dtype=np.float16)
        group.state_ = _Fitted(
            np.asarray(state["mean"], dtype=np.float64),
            np.asarray(state["scale"], dtype=np.float64),
            coef,
            float(state["intercept"]),
            neighbours.reshape(-1, len(coef)),
            np.asarray(state["targets"], dtype=np.float64),
        )
        return group
