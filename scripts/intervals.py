"""Which prediction intervals to serve, and whether a model of the two score modes helps: measured on the
outer evaluation folds, paired, for the served hybrid with the parameters the nested tuning chose inside
each outer training fold (hybrid_scorer/tuned/<config>.json; the defaults where there is none).

Per outer fold: the model with quantile heads (5%, 10%, 90%, 95%) and p_top (P(score >= 1,000)) is fitted
on the training posts and predicts the held-out ones; the same model on inner grouped folds of the
training posts gives the out-of-fold predictions each interval scheme is calibrated on (as `train` does).
Schemes (hybrid_scorer/intervals.py): symmetric, conformalized quantile regression, Mondrian per
predicted-score quintile, residuals scaled by the 10%-90% spread. Each is reported overall, per true mode
and per predicted quintile, with the mean interval (Winkler) score on log1p(score).

The two-mode model: a second LightGBM on the same features plus p_top, out of fold for the training posts
(the inner folds' p_top) and the fold model's for the held-out ones, paired against the served model:
Spearman, RMSE and the symmetric interval score.

Writes reports/intervals.{md,json} and reports/intervals.png. Needs the LLM cache (`make run`).
Usage: python scripts/intervals.py [--data CSV] [--llm embedded] [--inner-folds 5]"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import sparse

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import grouped_folds, prepare_posts
from hybrid_scorer.evaluation import CVResult, apply_schemes, cross_validate, empty_checks
from hybrid_scorer.features.matrix import FeatureMatrix
from hybrid_scorer.intervals import SCHEMES, interval_score
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import Job
from hybrid_scorer.quality import bootstrap_intervals
from hybrid_scorer.report import INTERVAL_MARKERS, IntervalRow, ci_text, intervals_section, replace_block
from hybrid_scorer.roles import Role
from hybrid_scorer.specs import SERVED
from hybrid_scorer.target import TOP_SCORE, log_target, to_score
from hybrid_scorer.tuning import TunedParams, defaults

HEADS = ("q0.05", "q0.1", "q0.9", "q0.95", "p_top")  # enough for every scheme at both levels


def fold_choices(config_key: str, settings: Any, n_folds: int) -> list[dict[str, Any]]:
    """The parameters the nested search chose in each outer training fold (the defaults without one)."""
    tuned = TunedParams.load(config_key)
    if tuned is None or tuned.nested is None:
        return [defaults(settings)] * n_folds
    return [fold["best_params"] for fold in tuned.nested.folds]


def two_mode(model: HybridScorer, training: pd.DataFrame, held_out: pd.DataFrame, inner_top: np.ndarray) -> np.ndarray:
    """The second stage: LightGBM on the model's features plus p_top (inner out-of-fold for training rows)."""
    features = FeatureMatrix(list(model.groups), model.feature_options or {})
    y = log_target(training)
    train_x = sparse.hstack([features.fit_transform(training, y), inner_top[:, None]], format="csr")
    test_top = model.score(held_out).heads["p_top"]
    test_x = sparse.hstack([features.transform(held_out), test_top[:, None]], format="csr")
    booster = lgb.train(model.lightgbm_params(), lgb.Dataset(train_x, label=y), num_boost_round=model.num_boost_round)
    return np.asarray(booster.predict(test_x, num_threads=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--llm", default="embedded", help="LLM spec whose cached features to use")
    parser.add_argument("--inner-folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    started = time.perf_counter()
    settings = get_settings(data_path=args.data)
    posts, report = prepare_posts(settings.data_path)
    config = SERVED[Role.HYBRID]
    job = Job(posts, report, settings, args.llm, progress=False)
    enriched = job.enriched(config.groups, job.client())
    y = log_target(enriched)
    folds = grouped_folds(enriched, settings.n_folds, settings.seed)
    choices = fold_choices(config.key, settings, len(folds))
    outer = CVResult("outer", np.full(len(enriched), np.nan), [])
    stacked = np.full(len(enriched), np.nan)
    checks = empty_checks(tuple(SCHEMES), len(enriched))
    for k, (train_idx, test_idx) in enumerate(folds):
        training, held_out = enriched.iloc[train_idx], enriched.iloc[test_idx]

        def make(choice: dict[str, Any] = choices[k]) -> HybridScorer:
            return config.make_scorer(settings, choice, HEADS)

        model = make().fit(training)
        scored = model.score(held_out)
        outer.oof_log[test_idx] = scored.log
        for head, values in scored.heads.items():
            outer.oof_heads.setdefault(head, np.full(len(enriched), np.nan))[test_idx] = values
        inner_folds = grouped_folds(training, args.inner_folds, settings.seed)
        inner = cross_validate("calibration", make, training, inner_folds, progress=False)
        apply_schemes(checks, inner, log_target(training), outer, test_idx)
        stacked[test_idx] = two_mode(model, training, held_out, inner.oof_heads["p_top"])
        print(f"outer fold {k}: {time.perf_counter() - started:.0f} s", flush=True)
    rows = [r for check in checks.values() for r in IntervalRow.rows(config, check, y, outer.oof_log)]
    result = {
        "config": config.key,
        "protocol": f"{settings.n_folds} outer grouped folds (seed {settings.seed}), {args.inner_folds} inner for"
        " calibration; per-fold parameters from the nested tuning",
        "seconds": round(time.perf_counter() - started),
        "intervals": [r.model_dump() for r in rows],
        "two_mode": two_mode_comparison(y, outer.oof_log, stacked, settings.seed, checks["symmetric"], enriched, folds),
        "p_top": p_top_quality(y, outer.oof_heads["p_top"]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "intervals.json").write_text(json.dumps(result, indent=1))
    (args.out / "intervals.md").write_text(render(result))
    plot(y, outer.oof_log, checks, args.out / "intervals.png")
    # the ablation report's Intervals section, refreshed from the reports/intervals.md just written
    section = intervals_section(args.out).split("\n", 1)[1].rsplit("\n", 1)[0]
    replace_block(args.out / "ablation.md", INTERVAL_MARKERS, section)
    print(render(result))


def two_mode_comparison(
    y: np.ndarray,
    served: np.ndarray,
    stacked: np.ndarray,
    seed: int,
    symmetric: Any,
    enriched: pd.DataFrame,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    """Paired: Spearman and RMSE by the bootstrap, the symmetric 90% interval score of each (calibrated
    on the held-out residuals of the other folds would need inner predictions of the stacked model; the
    served model's half-width is reused, so the comparison measures the point predictions' fit)."""
    own, delta = bootstrap_intervals(y, stacked, served, seed=seed)
    widths = {level: (symmetric.high[level] - symmetric.low[level]) / 2 for level in symmetric.levels}
    scores = {}
    for name, point in (("served", served), ("two_mode", stacked)):
        low, high = np.clip(point - widths[0.9], 0, None), point + widths[0.9]
        scores[name] = float(interval_score(y, low, high, 0.9).mean())
    return {"two_mode": own, "delta_vs_served": delta, "interval_score_90": scores}


def p_top_quality(y: np.ndarray, p_top: np.ndarray) -> dict[str, float]:
    """How well the out-of-fold p_top separates the modes: AUC, Brier score, calibration by decile."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    top = (to_score(y) >= TOP_SCORE).astype(int)
    return {
        "auc": float(roc_auc_score(top, p_top)),
        "brier": float(brier_score_loss(top, p_top)),
        "base_rate": float(top.mean()),
    }


def plot(y: np.ndarray, point: np.ndarray, checks: dict[str, Any], path: Path) -> None:
    """90% interval width (log1p) against the predicted score, covered and missed posts apart."""
    fig, axes = plt.subplots(1, len(checks), figsize=(4 * len(checks), 3.6), sharey=True)
    for ax, (name, check) in zip(np.atleast_1d(axes), checks.items(), strict=True):
        low, high = check.low[0.9], check.high[0.9]
        covered = (y >= low) & (y <= high)
        ax.scatter(point[covered], (high - low)[covered], s=3, alpha=0.4, label="covered", color="tab:blue")
        ax.scatter(point[~covered], (high - low)[~covered], s=5, alpha=0.7, label="missed", color="tab:red")
        ax.set_title(f"{name}: {covered.mean():.1%} covered")
        ax.set_xlabel("predicted log1p(score), out of fold")
    np.atleast_1d(axes)[0].set_ylabel("90% interval width, log1p")
    np.atleast_1d(axes)[0].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Prediction intervals and the two modes",
        "",
        f"Generated by `python scripts/intervals.py` ({result['seconds']} s): `{result['config']}`,"
        f" {result['protocol']}. Interval score: mean Winkler score on log1p(score) (lower is better).",
        "",
        "| scheme | level | coverage | score >= 1,000 | score < 1,000 | by predicted quintile (low -> high) |"
        " interval score | median width by quintile (points) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["intervals"]:
        quintiles = " / ".join(f"{c:.0%}" for c in r["coverage_by_quintile"])
        widths = " / ".join(f"{w:,.0f}" for w in r["median_width_by_quintile"])
        lines.append(
            f"| {r['scheme']} | {r['level']:.0%} | {r['coverage']:.1%} | {r['coverage_top']:.1%} |"
            f" {r['coverage_rest']:.1%} | {quintiles} | {r['interval_score']:.3f} | {widths} |"
        )
    two = result["two_mode"]
    p = result["p_top"]
    lines += [
        "",
        f"p_top out of fold: AUC {p['auc']:.3f}, Brier {p['brier']:.3f} (base rate {p['base_rate']:.1%}).",
        "",
        "Two-mode model (a second LightGBM on the features plus out-of-fold p_top) against the served model,"
        f" paired: Spearman {ci_text(two['two_mode']['spearman'])},"
        f" Δ {ci_text(two['delta_vs_served']['spearman'], True)};"
        f" RMSE Δ {ci_text(two['delta_vs_served']['rmse'], True)}; 90% interval score"
        f" {two['interval_score_90']['two_mode']:.3f} vs {two['interval_score_90']['served']:.3f}.",
        "",
        "![interval width against the predicted score](intervals.png)",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
