"""Grouped cross-validation of log-score estimators and the interval schemes checked on its folds
(the metrics and their bootstrap intervals are quality.py's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hybrid_scorer.intervals import LEVELS, SCHEMES
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.quality import regression_metrics
from hybrid_scorer.target import LogScoreEstimator, log_target


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
        if isinstance(estimator, HybridScorer):  # the point model and its heads in one call
            scored = estimator.score(held_out)
            result.oof_log[test_idx] = scored.log
            for head, values in scored.heads.items():
                result.oof_heads.setdefault(head, np.full(len(posts), np.nan))[test_idx] = values
        else:
            result.oof_log[test_idx] = estimator.predict_log(held_out)
        result.fold_metrics.append(regression_metrics(y_log[test_idx], result.oof_log[test_idx]))
    return result


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
