"""The named feature-group configurations: what the served models are and the LightGBM configurations the
ablation compares them with (its lists and baselines are ablation.py's).

Training, serving, the ablation and the benches all read these, so the served model's definition is not
an experiment's detail. `key` is a stable, queryable name (metric keys, tags); `name` is for people."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from hybrid_scorer.config import Settings
from hybrid_scorer.features.matrix import CONTENT_GROUPS, llm_needs
from hybrid_scorer.intervals import heads_for
from hybrid_scorer.model import P_TOP, HybridScorer
from hybrid_scorer.roles import Role
from hybrid_scorer.target import LogScoreEstimator
from hybrid_scorer.tuning import TunedParams, scorer_kwargs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    key: str
    name: str
    groups: tuple[str, ...] = ()
    # a reference model in place of LightGBM (the baselines are experiment code: ablation.py names them)
    baseline: Callable[[Settings], LogScoreEstimator] | None = None

    def make(self, settings: Settings) -> LogScoreEstimator:
        return self.baseline(settings) if self.baseline is not None else self.make_scorer(settings)

    def make_scorer(
        self,
        settings: Settings,
        choice: dict[str, Any] | None = None,
        heads: Sequence[str] = (),
        head_rounds: int | None = None,
    ) -> HybridScorer:
        """The LightGBM model of this configuration (baselines have none), with LightGBM's defaults or a
        choice of the tuning search's space (tuning.py), and these heads beside the point model."""
        if self.baseline is not None:
            raise ValueError(f"{self.name} is a baseline, not a HybridScorer")
        if choice is not None:
            return HybridScorer(self.groups, heads=heads, head_rounds=head_rounds, **scorer_kwargs(choice, settings))
        return HybridScorer(
            self.groups,
            seed=settings.seed,
            feature_options={"llm_embedding": {"n_components": settings.embedding_components, "seed": settings.seed}},
            heads=heads,
            head_rounds=head_rounds,
        )

    @property
    def uses_llm(self) -> bool:
        return bool(llm_needs(self.groups))


CONTENT = Config("content", "content (text_stats+tfidf+meta)", CONTENT_GROUPS)
TIME_TREND = Config("content_time_trend", "content + time_trend (sampling artifact)", (*CONTENT_GROUPS, "time_trend"))
FULL_HYBRID = Config(
    "full_hybrid", "full hybrid (content + LLM ratings + embedding)", (*CONTENT_GROUPS, "llm_ratings", "llm_embedding")
)
CONTENT_EMBEDDING = Config("content_llm_embedding", "content + LLM embedding", (*CONTENT_GROUPS, "llm_embedding"))
STACKED = Config("full_hybrid_stack", "full hybrid + stacked embedding features", (*FULL_HYBRID.groups, "llm_stack"))

# What `train` saves and `predict()` serves: the hybrid, and the content model it falls back to. The
# stacked embedding features are in it because the ablation supports them: the paired comparison of
# STACKED against FULL_HYBRID (ablation.COMPARISONS; its interval in reports/ablation.md).
SERVED = {Role.CONTENT: CONTENT, Role.HYBRID: STACKED}
# How the served models' intervals are made (intervals.py), chosen by scripts/intervals.py: the scheme with
# the best interval score among those whose outer-fold coverage holds (reports/intervals.md).
INTERVAL_SCHEME = "cqr"
SERVE_P_TOP = True  # the served models also estimate P(score >= 1,000): a number a person can read
# How many rounds the served models' heads get, chosen by scripts/heads.py (reports/heads.md): the fewest
# whose interval score stays within 1% of heads as long as the point model (None: as long).
HEAD_ROUNDS: dict[str, int | None] = {"content": 400, "full_hybrid_stack": 400}


def served_tuning(config: Config, data_sha256: str) -> TunedParams | None:
    """The parameters `train` serves for this configuration: those `hybrid-scorer tune` chose on this very
    data (hybrid_scorer/tuned/), or None (LightGBM's defaults) when there are none or they were tuned on
    other data. `train` and the ablation's served rows both read them here, so the row labelled served is
    the model `predict()` answers with."""
    tuned = TunedParams.load(config.key)
    if tuned is not None and tuned.data_sha256 != data_sha256:
        log.warning("%s was tuned on other data (sha256 %s): LightGBM's defaults", config.key, tuned.data_sha256[:12])
        return None
    return tuned


def served_maker(config: Config, settings: Settings, data_sha256: str) -> Callable[[], HybridScorer]:
    """A fresh, unfitted served model of this configuration per call (heads and tuned parameters included)."""
    tuned = served_tuning(config, data_sha256)
    return partial(served_scorer, config, settings, tuned.chosen if tuned else None)


def served_scorer(config: Config, settings: Settings, choice: dict[str, Any] | None = None) -> HybridScorer:
    """A served model: its configuration (LightGBM's defaults, or the tuned choice), with the heads its
    intervals read and p_top."""
    heads = (*heads_for(INTERVAL_SCHEME), *((P_TOP,) if SERVE_P_TOP else ()))
    return config.make_scorer(settings, choice, heads, HEAD_ROUNDS.get(config.key))


def groups_of(configs: Iterable[Config]) -> list[str]:
    """Every feature group these configurations read (to know which LLM columns to extract)."""
    return sorted({g for c in configs for g in c.groups})
