"""Prediction intervals by conformal prediction on out-of-fold residuals.

The model is refitted in K inner folds of its own training rows (grouped by normalized title, as every
split here is); each training post's absolute error on log1p(score) is measured by a model that never
saw it. The interval at level 1 - a is the prediction plus or minus the ceil((n + 1)(1 - a))-th smallest
of those n errors (split-conformal's finite-sample quantile, with the K-fold residuals of CV+): for a new
post exchangeable with the training posts it covers the true log score with probability at least 1 - a.
The guarantee is marginal, over all posts: `reports/ablation.md` measures the coverage on the outer folds
overall and for old "top" posts and new posts separately, where it does not hold."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

from hybrid_scorer.target import to_score

LEVELS = (0.8, 0.9)


class ConformalIntervals(BaseModel):
    """Half-widths on log1p(score) per coverage level ("0.8", "0.9"), from `n_residuals` residuals."""

    half_widths: dict[str, float]
    n_residuals: int

    @classmethod
    def from_residuals(cls, residuals: np.ndarray, levels: tuple[float, ...] = LEVELS) -> ConformalIntervals:
        errors = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
        n = len(errors)
        if n == 0:
            raise ValueError("conformal intervals need at least one out-of-fold residual")
        half_widths = {}
        for level in levels:
            rank = math.ceil((n + 1) * level)  # beyond n: the interval must be unbounded
            half_widths[f"{level:g}"] = float(errors[rank - 1]) if rank <= n else math.inf
        return cls(half_widths=half_widths, n_residuals=n)

    def log_bounds(self, log_pred: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) on log1p(score); a score is never below 0."""
        key = f"{level:g}"
        if key not in self.half_widths:
            raise ValueError(f"no {level:.0%} interval was calibrated; available: {sorted(self.half_widths)}")
        width = self.half_widths[key]
        return np.clip(log_pred - width, 0.0, None), log_pred + width

    def bounds(self, log_pred: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) in score units."""
        low, high = self.log_bounds(log_pred, level)
        return to_score(low), to_score(high)
