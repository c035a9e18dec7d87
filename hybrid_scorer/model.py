"""HybridScorer: feature groups + LightGBM on log1p(score), saved without pickle.

Artifacts in a directory: `lightgbm.txt` (LightGBM's text format), `features.json` (vocabularies, idf,
flairs, PCA arrays) and `manifest.json` (groups, params, data hash, metrics, versions)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import Field
from scipy import sparse
from sklearn.base import BaseEstimator

from hybrid_scorer.config import DEFAULT_SEED
from hybrid_scorer.errors import ConfigurationError, MissingArtifactError
from hybrid_scorer.features.base import PostRow, require_fitted
from hybrid_scorer.features.matrix import CONTENT_GROUPS, FeatureMatrix
from hybrid_scorer.features.meta import NO_FLAIR, RARE_FLAIR
from hybrid_scorer.forests import in_chunks, stack_models
from hybrid_scorer.intervals import Intervals
from hybrid_scorer.llm.fields import LLMFields
from hybrid_scorer.llm.usage import LLMOutput
from hybrid_scorer.marginal import average_over_one_hot
from hybrid_scorer.rowforest import RowForest
from hybrid_scorer.target import TOP_SCORE, log_target, to_score
from hybrid_scorer.version import __version__

# Deterministic on one machine: same data, seed and build give bit-identical models (`deterministic`,
# row-wise histograms, fixed thread count). Across CPUs the float arithmetic of LightGBM's histograms
# and of llama.cpp's features can differ in the last bits, which moves metrics in the third decimal.
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
P_TOP = "p_top"  # the head that predicts the probability of the upper mode (score >= TOP_SCORE)
DEFAULT_ROUNDS = 800  # what nested tuning changes: `hybrid-scorer tune` (reports/tuning.md, hybrid_scorer/tuned/)


class ModelManifest(LLMFields):
    """What a reviewer needs to know about a saved model without loading it (the LLM setup's fields come
    from LLMFields: None for a model trained without an LLM)."""

    package_version: str = __version__
    created_utc: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    feature_groups: list[str]
    params: dict[str, Any]
    num_boost_round: int
    n_features: int
    n_train: int
    training_data_hash: str
    intervals: Intervals | None = None  # calibrated on the training posts' out-of-fold predictions (train)
    metrics: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    heads: list[str] = Field(default_factory=list)  # boosters beside the point model (lightgbm_<head>.txt)
    head_rounds: int | None = None  # their round count; None: the point model's (models from before it)

    @property
    def version(self) -> str:
        """What a prediction names as its model: the feature groups at the training data's hash."""
        return f"{'+'.join(self.feature_groups)}@{self.training_data_hash[:10]}"


def _link(head: str, raw: np.ndarray) -> np.ndarray:
    """A head's prediction from its raw score: a probability for p_top, the quantile itself otherwise."""
    return 1.0 / (1.0 + np.exp(-raw)) if head == P_TOP else raw


def _raw(booster: lgb.Booster, rows: np.ndarray | sparse.csr_matrix) -> np.ndarray:
    return np.asarray(booster.predict(rows, raw_score=True, num_threads=1), dtype=np.float64)


@dataclass(frozen=True)
class Scored:
    """What `HybridScorer.score` says about posts, one entry per post in order (the row path: one):
    log1p(score) from the point model, each head read (quantiles on the log scale, p_top a probability)
    and, when asked for, each feature group's contribution to the log prediction (a row sums to `log`).
    `features` are the booster rows the forests read, one per post (built with flair "" for an unknown
    flair): a caller scoring the post again, or a variant of it, need not build them again."""

    log: np.ndarray
    heads: dict[str, np.ndarray]
    contributions: pd.DataFrame | None = None
    features: np.ndarray | sparse.csr_matrix | None = None

    @property
    def scores(self) -> np.ndarray:
        return to_score(self.log)

    def post(self, i: int = 0) -> tuple[float, dict[str, float]]:
        """Post i's log prediction and heads as numbers (the row path's one post by default)."""
        return float(self.log[i]), {head: float(values[i]) for head, values in self.heads.items()}

    def contributions_of(self, i: int = 0) -> dict[str, float]:
        """Post i's contribution by group, then `bias` (asked for with `score(..., contributions=True)`)."""
        if self.contributions is None:
            raise ValueError("no contributions: score(posts, contributions=True) computes them")
        return {str(group): float(value) for group, value in self.contributions.iloc[i].items()}


def training_data_hash(posts: pd.DataFrame) -> str:
    """Hash of the (post_id, score) pairs the model saw: same rows, same hash, whatever the file."""
    payload = "\n".join(f"{p}\t{s}" for p, s in zip(posts["post_id"], posts["score"], strict=True))
    return hashlib.sha256(payload.encode()).hexdigest()


def head_objective(head: str) -> dict[str, Any]:
    """LightGBM's objective for a head: `q0.05` (the 5% quantile of log1p(score)), `p_top` (the
    probability of the upper mode, score >= TOP_SCORE)."""
    if head == P_TOP:
        return {"objective": "binary"}
    if head.startswith("q") and 0 < float(head[1:]) < 1:
        return {"objective": "quantile", "alpha": float(head[1:])}
    raise ConfigurationError(f"unknown model head {head!r}: use 'q<alpha>' (e.g. q0.05) or 'p_top'")


class HybridScorer(BaseEstimator):
    """A scikit-learn estimator: parameters stored as given in __init__ (so `clone` and `get_params` work), no work
    before `fit`, fitted state (trailing _) set in fit. Unlike scikit-learn's, `fit` takes the posts alone: the
    target is their `score`. `score` is the one prediction entry point: a frame of posts or one PostRow in, a
    `Scored` out (log1p of the score, the heads, contributions on request); `predict` (scores, for scikit-learn) and
    `predict_log` (the LogScoreEstimator protocol) are its point model's answer. `heads` adds boosters on the same
    feature matrix: quantiles of log1p(score) (`q0.05`, ...: the intervals' bounds) and `p_top`, the probability
    that the post lands in the upper of the score's two modes, each with `head_rounds` rounds (the point model's
    when None; scripts/heads.py measures how few the intervals need)."""

    def __init__(
        self,
        groups: Sequence[str] = CONTENT_GROUPS,
        params: dict[str, Any] | None = None,
        num_boost_round: int = DEFAULT_ROUNDS,
        feature_options: dict[str, Any] | None = None,
        seed: int = DEFAULT_SEED,
        heads: Sequence[str] = (),
        head_rounds: int | None = None,
    ) -> None:
        self.groups = groups
        self.params = params
        self.num_boost_round = num_boost_round
        self.feature_options = feature_options
        self.seed = seed
        self.heads = heads
        self.head_rounds = head_rounds

    def flairs(self) -> list[str]:
        """The flairs a caller can name (the fitted levels without 'other' and no-flair), for a form."""
        meta = self.features_.group("meta")
        levels: list[str] = getattr(meta, "flairs_", [])
        return [f for f in levels if f not in (NO_FLAIR, RARE_FLAIR)]

    def flair_read_as(self, flair: str | None) -> str | None:
        """What the model made of a caller's flair: one of `flairs()`, "" (posted without a flair), "other"
        (a flair it did not learn); None when the caller sent none or the model reads no flair."""
        meta = self.features_.group("meta")
        if flair is None or meta is None:
            return None
        level: str = meta.level(flair)  # type: ignore[attr-defined]
        return "" if level == NO_FLAIR else level

    def lightgbm_params(self) -> dict[str, Any]:
        return {**DEFAULT_PARAMS, **(self.params or {}), "seed": self.seed}

    def fit(self, posts: pd.DataFrame) -> Self:
        features = FeatureMatrix(list(self.groups), self.feature_options or {})
        target = log_target(posts)
        matrix = features.fit_transform(posts, target)
        dataset = lgb.Dataset(matrix, label=target, feature_name=features.feature_names, free_raw_data=False)
        params = self.lightgbm_params()
        manifest = ModelManifest(
            feature_groups=list(self.groups),
            params=params,
            num_boost_round=self.num_boost_round,
            n_features=matrix.shape[1],
            n_train=len(posts),
            training_data_hash=training_data_hash(posts),
            heads=list(self.heads),
            head_rounds=self.head_rounds,
        )
        booster = lgb.train(params, dataset, num_boost_round=self.num_boost_round)
        heads = {}
        for head in self.heads:  # the same binned matrix (reference=dataset), another objective or label
            label = (posts["score"].to_numpy() >= TOP_SCORE).astype(float) if head == P_TOP else target
            data = lgb.Dataset(matrix, label=label, reference=dataset, feature_name=features.feature_names)
            rounds = self.head_rounds or self.num_boost_round
            heads[head] = lgb.train({**params, **head_objective(head)}, data, num_boost_round=rounds)
        return self._set_fitted(features, booster, manifest, heads)

    def _set_fitted(
        self,
        features: FeatureMatrix,
        booster: lgb.Booster,
        manifest: ModelManifest,
        heads: dict[str, lgb.Booster] | None = None,
    ) -> Self:
        """The fitted state, and what both prediction paths derive from it once: where the flair columns
        are (for posts of unknown flair: each booster averaged over them as one forest) and which group
        each column belongs to (for contributions)."""
        self.features_, self.booster_, self.manifest_ = features, booster, manifest
        self.heads_ = heads or {}
        groups = features.feature_groups
        self.group_names_ = list(dict.fromkeys(groups))
        self.group_indicator_ = np.array([[g == name for name in self.group_names_] for g in groups], dtype=np.float64)
        meta = features.group("meta")
        self.flair_levels_: tuple[slice, np.ndarray, np.ndarray] | None = None
        unknown_flair: dict[str, lgb.Booster] = {}  # each booster averaged over the flairs ("": the point model)
        if meta is not None:
            levels = meta.unknown_flair_weights()  # type: ignore[attr-defined]
            offset = features.column_offset("meta")
            columns = [offset + meta.flairs_.index(level) for level in levels]  # type: ignore[attr-defined]
            flair_columns = slice(offset, offset + len(meta.flairs_))  # type: ignore[attr-defined]
            self.flair_levels_ = (flair_columns, np.array(columns), np.array(list(levels.values())))
            # the row path's unknown flair: the K-row average as one forest, one row through it (marginal.py)
            group = range(flair_columns.start, flair_columns.stop)
            for name, model in {"": booster, **self.heads_}.items():
                averaged = average_over_one_hot(model.model_to_string(), group, columns, levels.values())
                unknown_flair[name] = lgb.Booster(model_str=averaged)
        # the row path, for each kind of row: the point model alone (the steering check's many calls), and
        # the point model with every head in one call (forests.py)
        self.point_ = {"known": booster} | ({"unknown": unknown_flair[""]} if unknown_flair else {})
        self.stacked_ = {"known": self._stack({"": booster, **self.heads_})}
        if unknown_flair:
            self.stacked_["unknown"] = self._stack(unknown_flair)
        # the stacked forests' first outputs are the point model in chunks of the heads' length (forests.py)
        self.point_chunks_ = self.stacked_["known"].num_model_per_iteration() - len(self.heads_)
        # the same for one row at a time, by LightGBM's fast single-row call (rowforest.py)
        self.row_point_ = {which: RowForest(b) for which, b in self.point_.items()}
        self.row_stacked_ = {which: RowForest(b) for which, b in self.stacked_.items()}
        return self

    def _stack(self, boosters: dict[str, lgb.Booster]) -> lgb.Booster:
        """The point model ("") and the heads, in the order of `heads_`, as one booster (one alone: itself).
        A point model longer than its heads goes in as chunks of their length: no padding trees to walk."""
        point, *heads = [boosters[name] for name in ("", *self.heads_)]
        if not heads:
            return point
        chunks = in_chunks(point.model_to_string(), max(h.num_trees() for h in heads))
        return lgb.Booster(model_str=stack_models([*chunks, *(h.model_to_string() for h in heads)]))

    def _with_unknown_flair(self, rows: np.ndarray) -> np.ndarray:
        """Each row (built with flair "") repeated once per trained flair level, that level's column set."""
        assert self.flair_levels_ is not None
        flair_columns, level_columns, _ = self.flair_levels_
        expanded = np.repeat(rows, len(level_columns), axis=0)
        expanded[:, flair_columns] = 0.0
        expanded[np.arange(len(expanded)), np.tile(level_columns, len(rows))] = 1.0
        return expanded

    def _rows(self, posts: pd.DataFrame) -> tuple[sparse.csr_matrix, np.ndarray]:
        """The posts' booster rows and which of them have an unknown flair (None): those are built with
        flair "" and read by the forests averaged over the flair levels, which never read the flair columns."""
        unknown = posts["flair"].isna().to_numpy() if "flair" in posts else np.zeros(len(posts), dtype=bool)
        if self.flair_levels_ is None or not unknown.any():
            return self.features_.transform(posts), np.zeros(len(posts), dtype=bool)
        return self.features_.transform(posts.assign(flair=posts["flair"].fillna(""))), unknown

    def _raw_routed(self, models: dict[str, lgb.Booster], rows: sparse.csr_matrix, unknown: np.ndarray) -> np.ndarray:
        """Raw scores of `models` ("known" and "unknown": point_ or stacked_) for each post's row (`_rows`):
        one row per post whatever its flair, so both paths predict an unknown flair the same way."""
        out: np.ndarray | None = None
        for which, mask in (("known", ~unknown), ("unknown", unknown)):
            if mask.any():
                raw = _raw(models[which], rows[np.flatnonzero(mask)])
                out = np.empty((len(unknown), *raw.shape[1:])) if out is None else out
                out[mask] = raw
        return out if out is not None else np.empty(0)

    def _contribution_design(
        self, rows: sparse.csr_matrix | np.ndarray, unknown: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For contributions, which the averaged forests cannot give per group: the posts' booster rows
        (`_rows`, `_row_vector`), a post of unknown flair as one row per trained flair level weighted by the
        level's share of the training posts (its features built once, only the flair columns differ); each
        row's weight and the post it stands for. Their weighted sum is what the averaged forests predict."""
        dense = rows if isinstance(rows, np.ndarray) else rows.toarray()
        n = len(dense)
        if not unknown.any():
            return dense, np.ones(n), np.arange(n)
        assert self.flair_levels_ is not None
        weights_per_level = self.flair_levels_[2]
        expanded = np.vstack([dense[~unknown], self._with_unknown_flair(dense[unknown])])
        owner = np.concatenate([np.flatnonzero(~unknown), np.repeat(np.flatnonzero(unknown), len(weights_per_level))])
        weights = np.concatenate([np.ones(int((~unknown).sum())), np.tile(weights_per_level, int(unknown.sum()))])
        return expanded, weights, owner

    @staticmethod
    def _average(values: np.ndarray, weights: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
        """Weighted mean per post of per-row values (several rows only for posts with an unknown flair)."""
        shape = (-1, *[1] * (values.ndim - 1))
        total = np.zeros((n, *values.shape[1:]))
        np.add.at(total, owner, values * weights.reshape(shape))
        return total / np.bincount(owner, weights=weights, minlength=n).reshape(shape)

    def score(
        self,
        posts: pd.DataFrame | PostRow,
        heads: bool = True,
        contributions: bool = False,
        features: np.ndarray | None = None,
    ) -> Scored:
        """The one prediction entry point, for a frame of posts (the batch path) or one PostRow (the row
        path: numpy only, equal to the batch path, see bench/parity.py). A post with flair None (unknown)
        gets the average over the flairs of the training posts, weighted by their shares, rather than the
        "no flair" level. With `heads` the point model and every head are read in one call of their
        stacked forest (forests.py); without, the point model alone. With `contributions`, each feature
        group's share of the log prediction (LightGBM's pred_contrib summed over the group's columns).
        `features`: the PostRow's booster row when it was built already (`Scored.features`)."""
        require_fitted(self, "booster_")
        read = self.heads_ if heads else {}
        rows: sparse.csr_matrix | np.ndarray  # built once: the forests and the contributions read the same rows
        if isinstance(posts, PostRow):
            which = self._reader(posts)
            rows = self._row_vector(posts, which) if features is None else features.reshape(1, -1)
            unknown = np.array([which == "unknown"])
            raw = (self.row_stacked_ if heads else self.row_point_)[which](rows[0]).reshape(1, -1)
        else:
            rows, unknown = self._rows(posts)
            raw = self._raw_routed(self.stacked_ if heads else self.point_, rows, unknown).reshape(len(posts), -1)
        chunks = self.point_chunks_ if heads else 1
        return Scored(
            log=raw[:, :chunks].sum(axis=1),
            heads={head: _link(head, raw[:, chunks + i]) for i, head in enumerate(read)},
            contributions=self._contributions_by_group(rows, unknown) if contributions else None,
            features=rows,
        )

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray:
        """Predictions of log1p(score), the point model alone: what every LogScoreEstimator answers."""
        return self.score(posts, heads=False).log

    def predict(self, posts: pd.DataFrame) -> np.ndarray:
        """Predicted scores (expm1 of the log prediction, never below 0)."""
        return self.score(posts, heads=False).scores

    def _reader(self, row: PostRow) -> str:
        """Which boosters read the post's row: the model's own ("known") or, for an unknown flair, the
        forests averaged over the flair levels ("unknown"; the row's flair columns are never read)."""
        return "unknown" if row.flair is None and "unknown" in self.point_ else "known"

    def _row_vector(self, row: PostRow, which: str) -> np.ndarray:
        """The post's booster row (1 x features), built with flair "" for the averaged forests."""
        return self.features_.transform_row(replace(row, flair="") if which == "unknown" else row)[None, :]

    def score_variants(self, row: PostRow, variants: Sequence[PostRow], base: np.ndarray | None = None) -> Scored:
        """The point model's log prediction of each of `variants` (rows that differ from `row` in their text
        and LLM outputs only, flair included) and their booster rows: the blocks of the groups that read
        nothing that changed built once (or read from `base`, the row's own booster row), one fast
        single-row call each. The steering check's many calls; equal to `score` of each variant."""
        require_fitted(self, "booster_")
        which = self._reader(row)
        if which == "unknown":
            row, variants = replace(row, flair=""), [replace(v, flair="") for v in variants]
        if not variants:
            return Scored(log=np.empty(0), heads={}, features=np.empty((0, self.manifest_.n_features)))
        rows = self.features_.transform_variants(row, variants, base)
        return Scored(log=self.row_point_[which].rows(rows)[:, 0], heads={}, features=rows)

    def _contributions(self, rows: sparse.csr_matrix | np.ndarray) -> np.ndarray:
        """LightGBM's pred_contrib summed per group: one column per group, then `bias`."""
        # dense in, dense out: for sparse input LightGBM returns its contributions as a sparse matrix
        dense = rows if isinstance(rows, np.ndarray) else rows.toarray()
        contrib = np.asarray(self.booster_.predict(dense, pred_contrib=True, num_threads=1))
        return np.column_stack([contrib[:, :-1] @ self.group_indicator_, contrib[:, -1]])

    def _contributions_by_group(self, rows: sparse.csr_matrix | np.ndarray, unknown: np.ndarray) -> pd.DataFrame:
        """Each feature group's contribution to log1p(score) per post (its booster row, `unknown` where its
        flair is), plus `bias`, the expected value; a row sums to the log prediction. A post of unknown flair
        is the weighted mean of its rows over the flair levels, which is what the averaged forests predict."""
        design, weights, owner = self._contribution_design(rows, unknown)
        averaged = self._average(self._contributions(design), weights, owner, len(unknown))
        return pd.DataFrame(averaged, columns=[*self.group_names_, "bias"])

    def embedding_width(self) -> int | None:
        """Width of the LLM embedding the model was trained on (None without an embedding group)."""
        require_fitted(self, "features_")
        widths = [g.embedding_width for g in self.features_.fitted_ if LLMOutput.EMBEDDING in g.needs]
        return widths[0] if widths else None

    def gain_importance(self) -> pd.DataFrame:
        require_fitted(self, "booster_")
        return pd.DataFrame(
            {
                "feature": self.features_.feature_names,
                "group": self.features_.feature_groups,
                "gain": self.booster_.feature_importance(importance_type="gain"),
            }
        ).sort_values("gain", ascending=False, ignore_index=True)

    def save(self, directory: Path | str) -> Path:
        require_fitted(self, "booster_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / "lightgbm.txt"))
        for head, model in self.heads_.items():
            model.save_model(str(directory / f"lightgbm_{head}.txt"))
        (directory / "features.json").write_text(json.dumps(self.features_.to_dict()))
        (directory / "manifest.json").write_text(self.manifest_.model_dump_json(indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> Self:
        """Load from plain text/JSON files; nothing in the directory is executed or unpickled."""
        directory = Path(directory)
        for name in ("lightgbm.txt", "features.json", "manifest.json"):
            if not (directory / name).is_file():
                raise MissingArtifactError(f"{directory / name} is missing; train a model with `hybrid-scorer train`")
        manifest = ModelManifest.model_validate_json((directory / "manifest.json").read_text())
        features = FeatureMatrix.from_dict(json.loads((directory / "features.json").read_text()))
        scorer = cls(
            groups=manifest.feature_groups,
            params=manifest.params,
            num_boost_round=manifest.num_boost_round,
            feature_options=features.options,
            seed=manifest.params.get("seed", 42),
            heads=manifest.heads,
            head_rounds=manifest.head_rounds,
        )
        heads = {}
        for head in manifest.heads:
            path = directory / f"lightgbm_{head}.txt"
            if not path.is_file():
                raise MissingArtifactError(f"{path} is missing (the manifest lists head {head!r}); retrain the model")
            heads[head] = lgb.Booster(model_file=str(path))
        booster = lgb.Booster(model_file=str(directory / "lightgbm.txt"))
        return scorer._set_fitted(features, booster, manifest, heads)
