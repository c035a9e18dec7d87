"""Metrics on log1p(score), grouped cross-validation and bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr
from tqdm.auto import tqdm

METRICS = ("spearman", "rmse", "mae", "r2")
HIGHER_IS_BETTER = {"spearman": True, "rmse": False, "mae": False, "r2": True}


class LogScoreEstimator(Protocol):
    def fit(self, posts: pd.DataFrame) -> Self: ...

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray: ...


def regression_metrics(y_log: np.ndarray, pred_log: np.ndarray) -> dict[str, float]:
    """Spearman rho (ranking), RMSE and MAE on log1p(score), and R2 on log1p(score)."""
    error = pred_log - y_log
    ss_tot = float(np.sum((y_log - y_log.mean()) ** 2))
    rho = spearmanr(y_log, pred_log).statistic if np.ptp(pred_log) > 0 else 0.0
    return {
        "spearman": float(rho),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / ss_tot if ss_tot > 0 else 0.0,
    }


@dataclass
class CVResult:
    """Out-of-fold predictions (log scale) and per-fold metrics of one configuration."""

    name: str
    oof_log: np.ndarray
    fold_metrics: list[dict[str, float]]
    fit_seconds: float

    def mean(self, metric: str) -> float:
        return float(np.mean([m[metric] for m in self.fold_metrics]))

    def std(self, metric: str) -> float:
        return float(np.std([m[metric] for m in self.fold_metrics], ddof=1))


def cross_validate(
    name: str,
    make_estimator: Callable[[], LogScoreEstimator],
    posts: pd.DataFrame,
    folds: list[tuple[np.ndarray, np.ndarray]],
    progress: bool = True,
) -> CVResult:
    """Fit a fresh estimator per fold (so every fitted transform, PCA included, sees training rows only)."""
    import time

    y_log = np.log1p(posts["score"].to_numpy(np.float64))
    oof = np.full(len(posts), np.nan)
    fold_metrics = []
    started = time.perf_counter()
    for train_idx, test_idx in tqdm(folds, desc=name, leave=False, disable=not progress):
        estimator = make_estimator().fit(posts.iloc[train_idx])
        oof[test_idx] = estimator.predict_log(posts.iloc[test_idx])
        fold_metrics.append(regression_metrics(y_log[test_idx], oof[test_idx]))
    return CVResult(name, oof, fold_metrics, time.perf_counter() - started)


def _fast_spearman(y_rank: np.ndarray, pred: np.ndarray) -> float:
    pred_rank = rankdata(pred)
    return float(np.corrcoef(y_rank, pred_rank)[0, 1])


def _metric_on(idx: np.ndarray, y: np.ndarray, pred: np.ndarray, metric: str) -> float:
    if metric == "spearman":
        return _fast_spearman(rankdata(y[idx]), pred[idx])
    return regression_metrics(y[idx], pred[idx])[metric]


def bootstrap_interval(
    y_log: np.ndarray, pred_log: np.ndarray, metric: str, n_boot: int = 1000, seed: int = 0,
    baseline_log: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """(point, low, high): 95% percentile interval over posts resampled with replacement.

    With `baseline_log`, the statistic is the paired difference metric(pred) - metric(baseline) on the
    same resampled posts, which is what "feature X helps by d" needs."""
    rng = np.random.default_rng(seed)

    def statistic(idx: np.ndarray) -> float:
        value = _metric_on(idx, y_log, pred_log, metric)
        return value - _metric_on(idx, y_log, baseline_log, metric) if baseline_log is not None else value

    everything = np.arange(len(y_log))
    samples = [statistic(rng.integers(0, len(y_log), len(y_log))) for _ in range(n_boot)]
    low, high = np.percentile(samples, [2.5, 97.5])
    return statistic(everything), float(low), float(high)
