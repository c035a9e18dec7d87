"""Metrics on log1p(score), grouped cross-validation and bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from hybrid_scorer.intervals import LEVELS, SCHEMES
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.target import log_target

METRICS = ("spearman", "rmse", "mae", "r2")


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
    oof_heads: dict[str, np.ndarray] = field(default_factory=dict)  # a HybridScorer's heads, out of fold

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
    y_log = log_target(posts)
    result = CVResult(name, np.full(len(posts), np.nan), [])
    for train_idx, test_idx in tqdm(folds, desc=name, leave=False, disable=not progress):
        estimator = make_estimator().fit(posts.iloc[train_idx])
        held_out = posts.iloc[test_idx]
        result.oof_log[test_idx] = estimator.predict_log(held_out)
        if isinstance(estimator, HybridScorer):
            for head, values in estimator.predict_heads(held_out).items():
                result.oof_heads.setdefault(head, np.full(len(posts), np.nan))[test_idx] = values
        result.fold_metrics.append(regression_metrics(y_log[test_idx], result.oof_log[test_idx]))
    return result


Interval = tuple[float, float, float]  # (point estimate, 2.5th percentile, 97.5th percentile)


def bootstrap_intervals(
    y_log: np.ndarray,
    pred_log: np.ndarray,
    baseline_log: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """95% percentile intervals over posts resampled with replacement, for every metric; and, given a
    baseline's predictions on the same posts, of the paired difference metric(pred) - metric(baseline),
    which is what "feature group X helps by d" needs. Same seed, same resamples for every config."""
    rng = np.random.default_rng(seed)
    samples, deltas = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_log), len(y_log))
        own = regression_metrics(y_log[idx], pred_log[idx])
        samples.append(own)
        if baseline_log is not None:
            base = regression_metrics(y_log[idx], baseline_log[idx])
            deltas.append({m: own[m] - base[m] for m in METRICS})
    point = regression_metrics(y_log, pred_log)
    intervals = {m: (point[m], *_percentiles([s[m] for s in samples])) for m in METRICS}
    paired: dict[str, Interval] = {}
    if baseline_log is not None:
        base_point = regression_metrics(y_log, baseline_log)
        paired = {m: (point[m] - base_point[m], *_percentiles([d[m] for d in deltas])) for m in METRICS}
    return intervals, paired


def _percentiles(values: list[float]) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


@dataclass
class IntervalCheck:
    """One interval scheme evaluated on outer folds: per post, the bounds each level gave (log scale)."""

    scheme: str
    levels: tuple[float, ...]
    low: dict[float, np.ndarray]
    high: dict[float, np.ndarray]


def apply_schemes(
    checks: dict[str, IntervalCheck],
    calibration: CVResult,
    y_calibration: np.ndarray,
    outer: CVResult,
    test_idx: np.ndarray,
) -> None:
    """Calibrate each scheme of `checks` on `calibration` (out-of-fold predictions of the outer training
    posts) and write its bounds for the held-out posts `test_idx` of `outer`."""
    point, heads = outer.oof_log[test_idx], {h: v[test_idx] for h, v in outer.oof_heads.items()}
    for name, check in checks.items():
        calibrated = SCHEMES[name].calibrate(y_calibration, calibration.oof_log, calibration.oof_heads, check.levels)
        for level in check.levels:
            check.low[level][test_idx], check.high[level][test_idx] = calibrated.log_bounds(point, heads, level)


def empty_checks(schemes: tuple[str, ...], n: int, levels: tuple[float, ...] = LEVELS) -> dict[str, IntervalCheck]:
    return {
        name: IntervalCheck(
            name, levels, {a: np.full(n, np.nan) for a in levels}, {a: np.full(n, np.nan) for a in levels}
        )
        for name in schemes
    }


def cross_conformal(
    outer: CVResult,
    y_log: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    schemes: tuple[str, ...],
    levels: tuple[float, ...] = LEVELS,
) -> dict[str, IntervalCheck]:
    """Each scheme calibrated, for each outer fold, on the other folds' out-of-fold predictions and applied
    to this fold's (cross-conformal): no post calibrates its own interval and nothing is re-fitted. `train`
    calibrates the same way, on the out-of-fold predictions of every training post."""
    checks = empty_checks(schemes, len(y_log), levels)
    for _, test_idx in folds:
        rest = np.setdiff1d(np.arange(len(y_log)), test_idx)
        calibration = CVResult("calibration", outer.oof_log[rest], [], {h: v[rest] for h, v in outer.oof_heads.items()})
        apply_schemes(checks, calibration, y_log[rest], outer, test_idx)
    return checks
