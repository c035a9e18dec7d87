"""HybridScorer: feature groups + LightGBM on log1p(score), saved without pickle.

Artifacts in a directory: `lightgbm.txt` (LightGBM's text format), `features.json` (vocabularies, idf,
flairs, PCA arrays) and `manifest.json` (groups, params, data hash, metrics, versions)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from hybrid_scorer import __version__
from hybrid_scorer.features.matrix import CONTENT_GROUPS, FeatureMatrix

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.2,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
DEFAULT_ROUNDS = 800  # with the params above: the best of a 6-point sweep (scripts/sweep.py)


class ModelManifest(BaseModel):
    """What a reviewer needs to know about a saved model without loading it."""

    package_version: str = __version__
    created_utc: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    feature_groups: list[str]
    params: dict[str, Any]
    num_boost_round: int
    n_features: int
    n_train: int
    training_data_hash: str
    llm_spec: str | None = None
    prompt_version: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


def training_data_hash(posts: pd.DataFrame) -> str:
    """Hash of the (post_id, score) pairs the model saw: same rows, same hash, whatever the file."""
    payload = "\n".join(f"{p}\t{s}" for p, s in zip(posts["post_id"], posts["score"], strict=True))
    return hashlib.sha256(payload.encode()).hexdigest()


class HybridScorer:
    """Estimator-style: parameters in __init__, work in fit. Predicts on the score scale."""

    def __init__(
        self,
        groups: Sequence[str] = CONTENT_GROUPS,
        params: dict[str, Any] | None = None,
        num_boost_round: int = DEFAULT_ROUNDS,
        feature_options: dict[str, Any] | None = None,
        seed: int = 42,
    ) -> None:
        self.groups = list(groups)
        self.params = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
        self.num_boost_round = num_boost_round
        self.feature_options = feature_options or {}
        self.seed = seed
        self.features_: FeatureMatrix | None = None
        self.booster_: lgb.Booster | None = None
        self.manifest_: ModelManifest | None = None

    def fit(self, posts: pd.DataFrame) -> Self:
        self.features_ = FeatureMatrix(self.groups, self.feature_options)
        matrix = self.features_.fit_transform(posts)
        target = np.log1p(posts["score"].to_numpy(np.float64))
        dataset = lgb.Dataset(matrix, label=target, feature_name=self.features_.feature_names, free_raw_data=True)
        self.booster_ = lgb.train(self.params, dataset, num_boost_round=self.num_boost_round)
        self.manifest_ = ModelManifest(
            feature_groups=self.groups,
            params=self.params,
            num_boost_round=self.num_boost_round,
            n_features=matrix.shape[1],
            n_train=len(posts),
            training_data_hash=training_data_hash(posts),
        )
        return self

    def _check_fitted(self) -> tuple[FeatureMatrix, lgb.Booster]:
        if self.features_ is None or self.booster_ is None:
            raise RuntimeError("HybridScorer is not fitted: call fit() or HybridScorer.load(dir) first")
        return self.features_, self.booster_

    def transform(self, posts: pd.DataFrame) -> Any:
        """The feature matrix the booster sees (sparse)."""
        return self._check_fitted()[0].transform(posts)

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray:
        """Predictions of log1p(score)."""
        return np.asarray(self._check_fitted()[1].predict(self.transform(posts)), dtype=np.float64)

    def predict(self, posts: pd.DataFrame) -> np.ndarray:
        """Predicted scores (expm1 of the log prediction, never below 0)."""
        return np.clip(np.expm1(self.predict_log(posts)), 0.0, None)

    def gain_importance(self) -> pd.DataFrame:
        features, booster = self._check_fitted()
        return pd.DataFrame(
            {
                "feature": features.feature_names,
                "group": features.feature_groups,
                "gain": booster.feature_importance(importance_type="gain"),
            }
        ).sort_values("gain", ascending=False, ignore_index=True)

    def save(self, directory: Path | str) -> Path:
        features, booster = self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(directory / "lightgbm.txt"))
        (directory / "features.json").write_text(json.dumps(features.to_dict()))
        (directory / "manifest.json").write_text(self.manifest_.model_dump_json(indent=2) if self.manifest_ else "{}")
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> Self:
        """Load from plain text/JSON files; nothing in the directory is executed or unpickled."""
        directory = Path(directory)
        for name in ("lightgbm.txt", "features.json", "manifest.json"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} is missing; train a model with `hybrid-scorer train`")
        manifest = ModelManifest.model_validate_json((directory / "manifest.json").read_text())
        scorer = cls(
            groups=manifest.feature_groups,
            params=manifest.params,
            num_boost_round=manifest.num_boost_round,
            seed=manifest.params.get("seed", 42),
        )
        scorer.features_ = FeatureMatrix.from_dict(json.loads((directory / "features.json").read_text()))
        scorer.feature_options = scorer.features_.options
        scorer.booster_ = lgb.Booster(model_file=str(directory / "lightgbm.txt"))
        scorer.manifest_ = manifest
        return scorer
