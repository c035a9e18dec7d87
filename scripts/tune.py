"""Nested tuning of the served hybrid: what searching LightGBM's parameters and the embedding's PCA size
honestly buys.

Outer loop: the evaluation folds (grouped, stratified, seed 42). Inside each outer training fold, optuna
(TPE sampler, seeded, a fixed number of trials) picks parameters by their mean Spearman on inner grouped
folds of those training rows only; the chosen parameters are refitted on the outer training fold and
scored on its held-out posts, which no choice has looked at. The defaults are scored on the same outer
folds, and the paired bootstrap gives the difference. Writes reports/tuning.md and reports/tuning.json.

Usage: python scripts/tune.py [--trials 12] [--inner-folds 3] [--llm embedded] [--data CSV]
(LLM features come from the cache: run `make run` or `hybrid-scorer extract` first.)"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.data import grouped_folds, prepare_posts
from hybrid_scorer.evaluation import bootstrap_intervals, cross_validate, regression_metrics
from hybrid_scorer.model import DEFAULT_PARAMS, DEFAULT_ROUNDS, HybridScorer
from hybrid_scorer.pipeline import Job
from hybrid_scorer.report import ci_text
from hybrid_scorer.specs import SERVED


def suggest(trial: optuna.Trial) -> dict[str, Any]:
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


def scorer(choice: dict[str, Any], settings: Settings) -> HybridScorer:
    params = {k: v for k, v in choice.items() if k not in ("num_boost_round", "n_components")}
    return HybridScorer(
        SERVED["hybrid"].groups,
        params=params,
        num_boost_round=choice["num_boost_round"],
        feature_options={"llm_embedding": {"n_components": choice["n_components"], "seed": settings.seed}},
        seed=settings.seed,
    )


def defaults(settings: Settings) -> dict[str, Any]:
    keys = ("num_leaves", "learning_rate", "feature_fraction", "min_data_in_leaf", "lambda_l2")
    return {
        **{k: DEFAULT_PARAMS[k] for k in keys if k in DEFAULT_PARAMS},
        "num_boost_round": DEFAULT_ROUNDS,
        "n_components": settings.embedding_components,
    }


def tune(training: pd.DataFrame, settings: Settings, trials: int, inner_folds: int, seed: int) -> optuna.Study:
    folds = grouped_folds(training, inner_folds, settings.seed)

    def objective(trial: optuna.Trial) -> float:
        choice = suggest(trial)
        return cross_validate("inner", lambda: scorer(choice, settings), training, folds, progress=False).mean(
            "spearman"
        )

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(defaults(settings))  # the defaults are always one of the candidates
    study.optimize(objective, n_trials=trials)
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--llm", default="embedded", help="LLM spec whose cached features to use")
    parser.add_argument("--trials", type=int, default=12, help="optuna trials per outer fold (default 12)")
    parser.add_argument("--inner-folds", type=int, default=3, help="inner grouped folds (default 3)")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = get_settings(data_path=args.data)
    posts, report = prepare_posts(settings.data_path)
    job = Job(posts, report, settings, args.llm, progress=False)
    enriched = job.enriched(SERVED["hybrid"].groups, job.client())
    y_log = np.log1p(enriched["score"].to_numpy(np.float64))
    tuned_oof, default_oof = np.full(len(enriched), np.nan), np.full(len(enriched), np.nan)
    folds_out = []
    started = time.perf_counter()
    for k, (train_idx, test_idx) in enumerate(grouped_folds(enriched, settings.n_folds, settings.seed)):
        training, held_out = enriched.iloc[train_idx], enriched.iloc[test_idx]
        study = tune(training, settings, args.trials, args.inner_folds, settings.seed + k)
        best = {**defaults(settings), **study.best_params}
        tuned_oof[test_idx] = scorer(best, settings).fit(training).predict_log(held_out)
        default_oof[test_idx] = scorer(defaults(settings), settings).fit(training).predict_log(held_out)
        folds_out.append(
            {
                "fold": k,
                "best_params": best,
                "inner_spearman_best": study.best_value,
                "inner_spearman_defaults": study.trials[0].value,
                "outer_spearman_tuned": regression_metrics(y_log[test_idx], tuned_oof[test_idx])["spearman"],
                "outer_spearman_defaults": regression_metrics(y_log[test_idx], default_oof[test_idx])["spearman"],
            }
        )
        print(json.dumps(folds_out[-1]), flush=True)
    tuned, delta = bootstrap_intervals(y_log, tuned_oof, default_oof, seed=settings.seed)
    plain, _ = bootstrap_intervals(y_log, default_oof, seed=settings.seed)
    result = {
        "config": SERVED["hybrid"].key,
        "trials_per_fold": args.trials,
        "inner_folds": args.inner_folds,
        "seconds": round(time.perf_counter() - started),
        "defaults": plain,
        "tuned_nested": tuned,
        "delta_tuned_minus_defaults": delta,
        "folds": folds_out,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tuning.json").write_text(json.dumps(result, indent=1))
    (args.out / "tuning.md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Nested tuning",
        "",
        f"Generated by `python scripts/tune.py --trials {result['trials_per_fold']} --inner-folds"
        f" {result['inner_folds']}` ({result['seconds']} s): configuration `{result['config']}`, optuna TPE"
        " (seeded) on inner grouped folds of each outer training fold; outer folds = the evaluation folds.",
        "",
        "| | Spearman [95% CI] | RMSE log1p [95% CI] |",
        "|---|---|---|",
        f"| defaults | {ci_text(result['defaults']['spearman'])} | {ci_text(result['defaults']['rmse'])} |",
        f"| tuned (nested) | {ci_text(result['tuned_nested']['spearman'])} |"
        f" {ci_text(result['tuned_nested']['rmse'])} |",
        f"| Δ tuned - defaults (paired) | {ci_text(result['delta_tuned_minus_defaults']['spearman'], True)} |"
        f" {ci_text(result['delta_tuned_minus_defaults']['rmse'], True)} |",
        "",
        "| outer fold | inner Spearman: defaults -> best | outer Spearman: defaults -> tuned | chosen |",
        "|---|---|---|---|",
    ]
    for f in result["folds"]:
        chosen = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in f["best_params"].items())
        lines.append(
            f"| {f['fold']} | {f['inner_spearman_defaults']:.3f} -> {f['inner_spearman_best']:.3f} |"
            f" {f['outer_spearman_defaults']:.3f} -> {f['outer_spearman_tuned']:.3f} | {chosen} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
