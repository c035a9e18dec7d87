"""Prediction intervals by conformal prediction on out-of-fold predictions, four ways.

Each scheme is calibrated on the training posts' out-of-fold predictions (made by models that never saw
the post: K grouped folds, as every split here is) and gives, for a new post, bounds on log1p(score)
that hold its true value with probability at least the level if the post is exchangeable with the
training posts (split conformal's finite-sample quantile: the ceil((n + 1) * level)-th smallest of the
n calibration scores, with the K-fold predictions of CV+). They differ in what adapts to the post:

- `symmetric`: the point prediction plus or minus one width for every post (|residual| scores);
- `cqr`: conformalized quantile regression (Romano, Patterson & Candes 2019; MAPIE's
  ConformalizedQuantileRegressor): LightGBM quantile heads give the bounds, widened or narrowed by the
  conformal quantile of max(low - y, y - high);
- `mondrian`: the symmetric scheme calibrated apart in each bin of the predicted score (bin edges from
  the calibration predictions): coverage holds per bin, and a bin of easy posts gets a narrow interval;
- `scaled`: |residual| / difficulty, with the difficulty the spread of the 10%-90% quantile heads.

The guarantee is marginal over posts (per bin for `mondrian`); `scripts/intervals.py` measures every
scheme on outer folds, overall, per true mode and per predicted quintile, with the interval (Winkler)
score, and `train` serves the one it picked (INTERVAL_SCHEME)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AliasChoices, BaseModel, Discriminator, Field, Tag

from hybrid_scorer.target import to_score

LEVELS = (0.8, 0.9)  # the one place the served levels are chosen; every name below is derived from them
SPREAD = ("q0.1", "q0.9")  # the difficulty of `scaled`
Heads = Mapping[str, np.ndarray]


def level_percent(level: float) -> int:
    """A level as it is named everywhere outside the arithmetic: 80 for 0.8."""
    return round(level * 100)


def interval_field(level: float) -> str:
    """The prediction's field (and the log's key) holding a `level` interval: interval_80."""
    return f"interval_{level_percent(level)}"


def bound_columns(level: float) -> tuple[str, str]:
    """The outcome store's columns holding a `level` interval's bounds: low_80, high_80."""
    return f"low_{level_percent(level)}", f"high_{level_percent(level)}"


def quantile_heads(level: float) -> tuple[str, str]:
    """The heads that bound a `level` interval: q0.05 and q0.95 for 90%."""
    tail = round((1 - level) / 2, 6)
    return f"q{tail:g}", f"q{1 - tail:g}"


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest score; infinite when there are too few scores for the level."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    rank = math.ceil((len(ordered) + 1) * level)
    if len(ordered) == 0:
        raise ValueError("conformal intervals need at least one out-of-fold prediction")
    return float(ordered[rank - 1]) if rank <= len(ordered) else math.inf


def _key(level: float) -> str:
    return f"{level:g}"


class _Scheme(BaseModel, ABC):
    # the manifests of before the schemes called it n_residuals
    n_calibration: int = Field(validation_alias=AliasChoices("n_calibration", "n_residuals"))

    def needs(self) -> tuple[str, ...]:
        """The model heads the scheme reads."""
        return ()

    @classmethod
    @abstractmethod
    def calibrate(cls, y: np.ndarray, point: np.ndarray, heads: Heads, levels: tuple[float, ...] = LEVELS) -> Any:
        """The scheme calibrated on out-of-fold log targets, point predictions and heads."""

    @abstractmethod
    def log_bounds(self, point: np.ndarray, heads: Heads, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) on log1p(score)."""

    def bounds(self, point: np.ndarray, heads: Heads, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) in score units; a score is never below 0."""
        low, high = self.log_bounds(point, heads, level)
        return to_score(low), to_score(high)

    def fields(self, log_score: float, heads: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """One post's interval at every served level, in score units to 0.1, keyed by its field."""
        point, values = np.array([log_score]), {h: np.array([v]) for h, v in heads.items()}
        out = {}
        for level in LEVELS:
            low, high = self.bounds(point, values, level)
            out[interval_field(level)] = (round(float(low[0]), 1), round(float(high[0]), 1))
        return out

    def _level(self, table: Mapping[str, Any], level: float) -> Any:
        if _key(level) not in table:
            raise ValueError(f"no {level:.0%} interval was calibrated; available: {sorted(table)}")
        return table[_key(level)]


class SymmetricIntervals(_Scheme):
    kind: Literal["symmetric"] = "symmetric"
    half_widths: dict[str, float]

    @classmethod
    def calibrate(cls, y: np.ndarray, point: np.ndarray, heads: Heads, levels: tuple[float, ...] = LEVELS) -> Any:
        errors = np.abs(y - point)
        return cls(n_calibration=len(y), half_widths={_key(a): conformal_quantile(errors, a) for a in levels})

    def log_bounds(self, point: np.ndarray, heads: Heads, level: float) -> tuple[np.ndarray, np.ndarray]:
        width = self._level(self.half_widths, level)
        return np.maximum(point - width, 0.0), point + width


class QuantileIntervals(_Scheme):
    kind: Literal["cqr"] = "cqr"
    corrections: dict[str, float]

    def needs(self) -> tuple[str, ...]:
        return heads_for(self.kind, tuple(float(level) for level in self.corrections))

    @classmethod
    def calibrate(cls, y: np.ndarray, point: np.ndarray, heads: Heads, levels: tuple[float, ...] = LEVELS) -> Any:
        corrections = {}
        for level in levels:
            low, high = (heads[h] for h in quantile_heads(level))
            corrections[_key(level)] = conformal_quantile(np.maximum(low - y, y - high), level)
        return cls(n_calibration=len(y), corrections=corrections)

    def log_bounds(self, point: np.ndarray, heads: Heads, level: float) -> tuple[np.ndarray, np.ndarray]:
        correction = self._level(self.corrections, level)
        low, high = (np.asarray(heads[h]) for h in quantile_heads(level))
        # a quantile head may cross the point prediction's side: the interval always holds the point
        return np.maximum(np.minimum(low - correction, point), 0.0), np.maximum(high + correction, point)


class BinnedIntervals(_Scheme):
    kind: Literal["mondrian"] = "mondrian"
    edges: list[float]  # inner edges of the predicted-score bins
    half_widths: dict[str, list[float]]  # per level, one per bin

    @classmethod
    def calibrate(
        cls, y: np.ndarray, point: np.ndarray, heads: Heads, levels: tuple[float, ...] = LEVELS, bins: int = 5
    ) -> Any:
        edges = np.quantile(point, np.linspace(0, 1, bins + 1)[1:-1])
        which = np.searchsorted(edges, point, side="right")
        errors = np.abs(y - point)
        widths = {_key(a): [conformal_quantile(errors[which == b], a) for b in range(len(edges) + 1)] for a in levels}
        return cls(n_calibration=len(y), edges=edges.tolist(), half_widths=widths)

    def log_bounds(self, point: np.ndarray, heads: Heads, level: float) -> tuple[np.ndarray, np.ndarray]:
        widths = np.asarray(self._level(self.half_widths, level))[np.searchsorted(self.edges, point, side="right")]
        return np.maximum(point - widths, 0.0), point + widths


class ScaledIntervals(_Scheme):
    kind: Literal["scaled"] = "scaled"
    factors: dict[str, float]
    floor: float  # the smallest difficulty used (a spread can collapse to 0)

    def needs(self) -> tuple[str, ...]:
        return SPREAD

    @staticmethod
    def _difficulty(heads: Heads, floor: float) -> np.ndarray:
        return np.maximum(np.asarray(heads[SPREAD[1]]) - np.asarray(heads[SPREAD[0]]), floor)

    @classmethod
    def calibrate(cls, y: np.ndarray, point: np.ndarray, heads: Heads, levels: tuple[float, ...] = LEVELS) -> Any:
        floor = float(max(np.quantile(np.asarray(heads[SPREAD[1]]) - np.asarray(heads[SPREAD[0]]), 0.05), 1e-3))
        scores = np.abs(y - point) / cls._difficulty(heads, floor)
        return cls(n_calibration=len(y), factors={_key(a): conformal_quantile(scores, a) for a in levels}, floor=floor)

    def log_bounds(self, point: np.ndarray, heads: Heads, level: float) -> tuple[np.ndarray, np.ndarray]:
        width = self._level(self.factors, level) * self._difficulty(heads, self.floor)
        return np.maximum(point - width, 0.0), point + width


SCHEMES: dict[str, type[_Scheme]] = {
    "symmetric": SymmetricIntervals,
    "cqr": QuantileIntervals,
    "mondrian": BinnedIntervals,
    "scaled": ScaledIntervals,
}


def heads_for(scheme: str, levels: tuple[float, ...] = LEVELS) -> tuple[str, ...]:
    """The model heads a scheme reads at these levels."""
    if scheme == "cqr":
        return tuple(h for level in levels for h in quantile_heads(level))
    return SPREAD if scheme == "scaled" else ()


def _kind(value: Any) -> str:
    """Manifests from before the schemes have no kind: theirs were symmetric."""
    return str(value.get("kind", "symmetric") if isinstance(value, dict) else value.kind)


Intervals = Annotated[
    Annotated[SymmetricIntervals, Tag("symmetric")]
    | Annotated[QuantileIntervals, Tag("cqr")]
    | Annotated[BinnedIntervals, Tag("mondrian")]
    | Annotated[ScaledIntervals, Tag("scaled")],
    Discriminator(_kind),
]


def interval_score(y: np.ndarray, low: np.ndarray, high: np.ndarray, level: float) -> np.ndarray:
    """The interval (Winkler) score per post: width plus 2/alpha times the miss; lower is better, and it is
    proper: it is minimised in expectation by the true quantiles."""
    alpha = 1.0 - level
    return (high - low) + (2 / alpha) * np.clip(low - y, 0, None) + (2 / alpha) * np.clip(y - high, 0, None)
