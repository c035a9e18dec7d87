"""Tuning the served hybrid honestly: a nested estimate of what the search buys, and the search itself.

One search procedure (`search`: optuna's TPE sampler, seeded, a fixed number of trials, each scored by
its mean Spearman on grouped inner folds) is used twice:
- `nested`: inside every outer training fold of the evaluation folds, on those rows only; the chosen
  parameters are refitted there and scored on the held-out posts no choice has seen. That outer-fold
  Spearman is the served model's *expected* Spearman (reports/tuning.md), paired against the defaults.
- the final search on all posts, whose choice `train` uses. Its own inner score is optimistic (it is
  the best of the trials it picked from) and is recorded but never compared.
Both land in `hybrid_scorer/tuned/<config>.json` (committed: the search takes ~30 min on 2 cores, so it
is a step of its own, `hybrid-scorer tune`, rerun when the data, the features or the LLM change)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from hybrid_scorer.config import Settings
from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import cross_validate
from hybrid_scorer.model import DEFAULT_PARAMS, DEFAULT_ROUNDS, HybridScorer
from hybrid_scorer.quality import Interval, bootstrap_intervals, regression_metrics
from hybrid_scorer.target import log_target

SPACE = {  # what `suggest` searches, as text for the record
    "num_leaves": "int 4-63, log",
    "learning_rate": "float 0.01-0.1, log",
    "num_boost_round": "int 200-1500, log",
    "feature_fraction": "float 0.05-0.6",
    "min_data_in_leaf": "int 5-100, log",
    "lambda_l2": "float 1e-3-10, log",
    "n_components": "one of 16, 32, 64 (PCA of the LLM embedding)",
}
TUNED_DIR = Path(str(resources.files("hybrid_scorer") / "tuned"))


def suggest(trial: Any) -> dict[str, Any]:
    """The search space: LightGBM's capacity and regularisation, rounds, and the embedding's PCA size."""
    return {
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "num_boost_round": trial.suggest_int("num_boost_round", 200, 1500, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.05, 0.6),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5, 100, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        "n_components": trial.suggest_categorical("n_components", [16, 32, 64]),
    }


def defaults(settings: Settings) -> dict[str, Any]:
    keys = ("num_leaves", "learning_rate", "feature_fraction", "min_data_in_leaf", "lambda_l2")
    return {
        **{k: DEFAULT_PARAMS[k] for k in keys},
        "num_boost_round": DEFAULT_ROUNDS,
        "n_components": settings.embedding_components,
    }


def scorer_kwargs(choice: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """HybridScorer's arguments for a choice of the search space."""
    return {
        "params": {k: v for k, v in choice.items() if k not in ("num_boost_round", "n_components")},
        "num_boost_round": choice["num_boost_round"],
        "feature_options": {"llm_embedding": {"n_components": choice["n_components"], "seed": settings.seed}},
        "seed": settings.seed,
    }


class NestedEstimate(BaseModel):
    """The search's worth, measured on outer folds no choice has seen."""

    spearman: Interval  # of the tuned model: the served model's expected Spearman
    rmse: Interval
    defaults_spearman: Interval
    delta_spearman: Interval  # tuned - defaults, paired
    delta_rmse: Interval
    folds: list[dict[str, Any]]  # per outer fold: the chosen parameters and the inner and outer scores
    seconds: float


class TunedParams(BaseModel):
    """What `train` reads: the parameters the search chose on all posts, and how it was run."""

    config: str
    chosen: dict[str, Any]
    trials: int
    inner_folds: int
    seed: int
    space: dict[str, str] = SPACE
    sampler: str = "optuna TPESampler(seed), the defaults enqueued as the first trial"
    inner_spearman_best: float  # the final search's own (optimistic) score: recorded, never compared
    inner_spearman_defaults: float
    nested: NestedEstimate | None = None
    data_sha256: str
    # the LLM features the search read (the embedding's identity; None: no LLM, or not recorded): the
    # nested estimate describes these parameters on those features only
    features: dict[str, Any] | None = None
    created_utc: str

    @classmethod
    def load(cls, config: str, directory: Path = TUNED_DIR) -> TunedParams | None:
        path = directory / f"{config}.json"
        return cls.model_validate_json(path.read_text()) if path.is_file() else None

    def save(self, directory: Path = TUNED_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.config}.json"
        path.write_text(self.model_dump_json(indent=1) + "\n")
        return path


def search(
    posts: pd.DataFrame,
    make: Callable[[dict[str, Any]], HybridScorer],
    settings: Settings,
    trials: int,
    inner_folds: int,
    seed: int,
) -> Any:
    """The search: `trials` optuna trials (the defaults first), each the mean Spearman of grouped inner folds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folds = grouped_folds(posts, inner_folds, settings.seed)

    def objective(trial: optuna.Trial) -> float:
        choice = suggest(trial)
        return cross_validate("inner", lambda: make(choice), posts, folds, progress=False).mean("spearman")

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(defaults(settings))
    study.optimize(objective, n_trials=trials)
    return study


def nested(
    posts: pd.DataFrame,
    make: Callable[[dict[str, Any]], HybridScorer],
    settings: Settings,
    trials: int,
    inner_folds: int,
    report: Callable[[dict[str, Any]], None] = lambda fold: None,
) -> NestedEstimate:
    """The search inside each outer training fold, scored on its held-out posts, against the defaults."""
    started = time.perf_counter()
    y = log_target(posts)
    tuned_oof, default_oof = np.full(len(posts), np.nan), np.full(len(posts), np.nan)
    folds = []
    for k, (train_idx, test_idx) in enumerate(grouped_folds(posts, settings.n_folds, settings.seed)):
        training, held_out = posts.iloc[train_idx], posts.iloc[test_idx]
        study = search(training, make, settings, trials, inner_folds, settings.seed + k)
        best = {**defaults(settings), **study.best_params}
        tuned_oof[test_idx] = make(best).fit(training).predict_log(held_out)
        default_oof[test_idx] = make(defaults(settings)).fit(training).predict_log(held_out)
        folds.append(
            {
                "fold": k,
                "best_params": best,
                "inner_spearman_best": study.best_value,
                "inner_spearman_defaults": study.trials[0].value,
                "outer_spearman_tuned": regression_metrics(y[test_idx], tuned_oof[test_idx])["spearman"],
                "outer_spearman_defaults": regression_metrics(y[test_idx], default_oof[test_idx])["spearman"],
            }
        )
        report(folds[-1])
    tuned, delta = bootstrap_intervals(y, tuned_oof, default_oof, seed=settings.seed)
    plain, _ = bootstrap_intervals(y, default_oof, seed=settings.seed)
    return NestedEstimate(
        spearman=tuned["spearman"],
        rmse=tuned["rmse"],
        defaults_spearman=plain["spearman"],
        delta_spearman=delta["spearman"],
        delta_rmse=delta["rmse"],
        folds=folds,
        seconds=round(time.perf_counter() - started),
    )


def tune(
    posts: pd.DataFrame,
    config: str,
    make: Callable[[dict[str, Any]], HybridScorer],
    settings: Settings,
    data_sha256: str,
    trials: int = 12,
    inner_folds: int = 3,
    with_nested: bool = True,
    report: Callable[[dict[str, Any]], None] = lambda fold: None,
    features: dict[str, Any] | None = None,
) -> TunedParams:
    """The nested estimate (unless `with_nested` is off: then the last one recorded is kept, which is
    honest only while data and features are unchanged), then the final search on all posts."""
    previous = TunedParams.load(config)
    previous = previous if previous is not None and previous.features == features else None
    estimate = nested(posts, make, settings, trials, inner_folds, report) if with_nested else None
    study = search(posts, make, settings, trials, inner_folds, settings.seed)
    return TunedParams(
        config=config,
        chosen={**defaults(settings), **study.best_params},
        trials=trials,
        inner_folds=inner_folds,
        seed=settings.seed,
        inner_spearman_best=study.best_value,
        inner_spearman_defaults=study.trials[0].value,
        nested=estimate or (previous.nested if previous else None),
        data_sha256=data_sha256,
        features=features,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )
