"""The served estimator: a HybridScorer fitted on every post, with what only cross-fitting can give it.

Like scikit-learn's CalibratedClassifierCV, `fit` makes the folds itself. The base estimator is cloned
and fitted on each grouped fold's training posts; their out-of-fold predictions calibrate the prediction
intervals (conformal, intervals.py) and measure the Spearman the model is expected to reach. Then a clone
fitted on all posts carries both in its manifest, with where it came from. As a Pipeline's `memory` does,
`memory` names a directory where the cross-fit is kept and read back for the same input (fits.py).
`train` fits one per served role and saves `scorer_`; nothing outside this class writes a fitted model's
manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from hybrid_scorer.config import DEFAULT_SEED
from hybrid_scorer.features.base import require_fitted
from hybrid_scorer.fits import cross_fit
from hybrid_scorer.intervals import SCHEMES
from hybrid_scorer.llm.identity import LLMIdentity
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.quality import METRICS, bootstrap_intervals
from hybrid_scorer.specs import INTERVAL_SCHEME
from hybrid_scorer.target import log_target

Estimate = tuple[float, float, float]  # a Spearman and its 95% interval


class CalibratedScorer(BaseEstimator):
    """`estimator` (unfitted, left untouched) cross-fitted on `n_folds` grouped folds and fitted on all
    posts. `scheme`: the interval scheme calibrated on the out-of-fold predictions. `expected`: the
    Spearman to promise for new posts when a better estimate than this CV exists (the nested one of tuned
    parameters); else the CV's own. `llm` and `provenance` go into the manifest as they are: which LLM
    made the model's columns, and how it was trained. `memory`: where cross-fits are kept (None: not
    kept); `reused_` says whether this one was read from there."""

    def __init__(
        self,
        estimator: HybridScorer,
        scheme: str = INTERVAL_SCHEME,
        n_folds: int = 5,
        seed: int = DEFAULT_SEED,
        expected: Estimate | None = None,
        llm: LLMIdentity | None = None,
        provenance: dict[str, Any] | None = None,
        n_boot: int = 1000,
        progress: bool = False,
        memory: Path | None = None,
    ) -> None:
        self.estimator = estimator
        self.scheme = scheme
        self.n_folds = n_folds
        self.seed = seed
        self.expected = expected
        self.llm = llm
        self.provenance = provenance
        self.n_boot = n_boot
        self.progress = progress
        self.memory = memory

    def fit(self, posts: pd.DataFrame) -> Self:
        fitted = cross_fit(self.estimator, posts, self.n_folds, self.seed, self.progress, self.memory)
        cv, scorer = fitted.cv, fitted.scorer
        y_log = log_target(posts)
        oof = bootstrap_intervals(y_log, cv.oof_log, n_boot=self.n_boot, seed=self.seed)[0]["spearman"]
        metrics = {f"cv_{m}": cv.mean(m) for m in METRICS}
        metrics |= dict(zip(("cv_spearman_oof", "cv_spearman_ci_low", "cv_spearman_ci_high"), oof, strict=True))
        expected = self.expected or oof
        metrics |= dict(
            zip(("expected_spearman", "expected_spearman_ci_low", "expected_spearman_ci_high"), expected, strict=True)
        )
        assert scorer.manifest_ is not None  # fit writes it
        update = {
            "intervals": SCHEMES[self.scheme].calibrate(y_log, cv.oof_log, cv.oof_heads),
            "metrics": metrics,
            "extra": dict(self.provenance or {}),
            **(self.llm.manifest_fields() if self.llm is not None else {}),
        }
        scorer.manifest_ = scorer.manifest_.model_copy(update=update)
        self.scorer_, self.cv_, self.reused_ = scorer, cv, fitted.reused
        return self

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray:
        require_fitted(self, "scorer_")
        return self.scorer_.predict_log(posts)

    def save(self, directory: Path | str) -> Path:
        """The fitted scorer, as `HybridScorer.load` reads it back (its manifest carries the calibration)."""
        require_fitted(self, "scorer_")
        return self.scorer_.save(directory)
