"""How good log-score predictions are: the metrics on log1p(score) and their bootstrap intervals.

Evaluation (cross-validation, the ablation, tuning) and the realised-quality monitor of the service
(outcomes.py) measure the same things, so both read them here, and serving never loads the experiment
code in evaluation.py."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

METRICS = ("spearman", "rmse", "mae", "r2")


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
