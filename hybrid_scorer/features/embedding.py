"""The LLM's hidden-state embedding, reduced by PCA fitted on the training rows only.

The reducer is part of the fitted feature matrix, so in cross-validation it is refitted inside each
training fold and never sees test rows; it saves as JSON arrays (mean and components)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from hybrid_scorer.errors import ConfigurationError, ModelMismatchError
from hybrid_scorer.features.base import GroupBase, PostRow, require_fitted
from hybrid_scorer.features.llm import EMBEDDING_COLUMN
from hybrid_scorer.llm.usage import LLMOutput


def stack_embeddings(posts: pd.DataFrame, column: str = EMBEDDING_COLUMN) -> tuple[np.ndarray, np.ndarray]:
    """(matrix of the present vectors, boolean mask of which rows have one)."""
    if column not in posts:
        return np.zeros((0, 0)), np.zeros(len(posts), dtype=bool)
    vectors = posts[column].tolist()
    present = np.array([v is not None and np.size(v) > 0 for v in vectors], dtype=bool)
    if not present.any():
        return np.zeros((0, 0)), present
    return np.vstack([np.asarray(v, dtype=np.float64) for v, ok in zip(vectors, present, strict=True) if ok]), present


def check_width(found: int, width: int, fitted: str) -> None:
    """Refuse vectors of another width than the fitted state (`fitted` names it)."""
    if found != width:
        raise ModelMismatchError(
            f"embedding width {found} does not match the trained {fitted} ({width}); was the model trained with"
            " another LLM?"
        )


def trained_width_rows(
    posts: pd.DataFrame, width: int, fitted: str, column: str = EMBEDDING_COLUMN
) -> tuple[np.ndarray, np.ndarray]:
    """stack_embeddings, refusing vectors of another width than the fitted state."""
    matrix, present = stack_embeddings(posts, column)
    if present.any():
        check_width(matrix.shape[1], width, fitted)
    return matrix, present


def row_vector(row: PostRow, width: int, fitted: str, column: str = EMBEDDING_COLUMN) -> np.ndarray | None:
    """The row path's stack_embeddings: the post's vector as a 1 x width float64 matrix, or None."""
    vector = row.llm.get(column)
    if vector is None or np.size(vector) == 0:
        return None
    check_width(np.size(vector), width, fitted)
    return np.asarray(vector, dtype=np.float64).reshape(1, -1)


class EmbeddingFeatures(GroupBase):
    """PCA(k) of the LLM embedding; rows without an embedding get NaN (LightGBM handles missing)."""

    name: ClassVar[str] = "llm_embedding"
    reads_as: ClassVar[str] = "the LLM's reading of the post"
    reads_text: ClassVar[bool] = False
    needs: ClassVar[frozenset[LLMOutput]] = frozenset({LLMOutput.EMBEDDING})
    column: ClassVar[str] = EMBEDDING_COLUMN  # the posts' column of vectors (a subclass may read another)
    feature_prefix: ClassVar[str] = "llm_emb_pc"

    def __init__(self, n_components: int = 32, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        matrix, _ = stack_embeddings(posts, self.column)
        if len(matrix) < 2:
            raise ConfigurationError(
                f"feature group '{self.name}' needs embeddings for the training posts; run "
                "`hybrid-scorer extract` first (without --no-embed) or drop the group"
            )
        k = min(self.n_components, matrix.shape[0] - 1, matrix.shape[1])
        pca = PCA(n_components=k, svd_solver="full", random_state=self.seed).fit(matrix)
        # directions beyond the vectors' rank hold only rounding noise (~1e-17): a tree splitting on them
        # would answer by the arithmetic's last bits, so they are dropped
        kept = max(int((pca.explained_variance_ratio_ > 1e-12).sum()), 1)
        self.mean_, self.components_ = pca.mean_, pca.components_[:kept]
        return self

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        require_fitted(self, "components_")
        out = np.full((len(posts), len(self.components_)), np.nan)
        matrix, present = trained_width_rows(posts, self.embedding_width, "reducer", self.column)
        if present.any():
            out[present] = (matrix - self.mean_) @ self.components_.T
        return out

    def transform_row(self, row: PostRow) -> np.ndarray:
        require_fitted(self, "components_")
        vector = row_vector(row, self.embedding_width, "reducer", self.column)
        if vector is None:
            return np.full(len(self.components_), np.nan)
        return ((vector - self.mean_) @ self.components_.T)[0]

    @property
    def embedding_width(self) -> int:
        """Width of the vectors the reducer was fitted on."""
        require_fitted(self, "components_")
        return int(self.components_.shape[1])

    @property
    def feature_names(self) -> list[str]:
        require_fitted(self, "components_")
        return [f"{self.feature_prefix}{i}" for i in range(len(self.components_))]

    def to_dict(self) -> dict[str, Any]:
        require_fitted(self, "components_")
        return {
            "n_components": self.n_components,
            "seed": self.seed,
            "mean": self.mean_.tolist(),
            "components": self.components_.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        group = cls(n_components=state["n_components"], seed=state["seed"])
        group.mean_ = np.asarray(state["mean"], dtype=np.float64)
        group.components_ = np.asarray(state["components"], dtype=np.float64)
        return group
