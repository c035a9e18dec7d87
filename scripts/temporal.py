"""A forward-in-time view of the served models, beside the grouped cross-validation: what a deployed
model faces is posts written after everything it learnt from.

The data mixes two samples: "top" posts of 2016-2021 (median score in the thousands) and the posts of
2022 as they came (median ~11). Testing on the old sample would measure the sampling, so the test posts
are the latest 30% of the 2022 posts, and the models learn from every post written before the first of
them (old top posts included, as the served models do). A second split learns from the earlier 2022
posts alone. Each served model (content, and the hybrid with its LLM features from the cache) is scored
on the test posts with 95% bootstrap intervals, the hybrid's paired difference to content beside it;
and the same posts' out-of-fold predictions from the grouped 5-fold CV, so the two protocols are
compared on the same posts. Nothing here chooses anything: it is reported, not tuned on.

Writes reports/temporal.{md,json}. Usage: python scripts/temporal.py [--data CSV] [--llm embedded|none]"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import grouped_folds, prepare_posts
from hybrid_scorer.evaluation import cross_validate
from hybrid_scorer.pipeline import Job
from hybrid_scorer.quality import bootstrap_intervals
from hybrid_scorer.report import ci_text
from hybrid_scorer.roles import Role
from hybrid_scorer.specs import SERVED, groups_of, served_maker
from hybrid_scorer.target import log_target

TEST_SHARE = 0.3  # of the 2022 posts, the latest


def splits(posts: pd.DataFrame) -> tuple[pd.Timestamp, dict[str, np.ndarray], np.ndarray]:
    """The first test post's time, the training rows of each split, and the test rows."""
    created = posts["created_utc"]
    recent = created.dt.year == 2022
    start = created[recent].quantile(1 - TEST_SHARE)
    test = np.flatnonzero(created >= start)
    before = created < start
    return (
        start,
        {"every earlier post": np.flatnonzero(before), "earlier 2022 posts": np.flatnonzero(before & recent)},
        test,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--llm", default="embedded", help="LLM spec whose cached features the hybrid uses, or none")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    started = time.perf_counter()
    settings = get_settings(data_path=args.data)
    posts, report = prepare_posts(settings.data_path)
    job = Job(posts, report, settings, args.llm, progress=False)
    client = job.client()
    roles = [Role.CONTENT, *([Role.HYBRID] if client is not None else [])]
    enriched = job.enriched(groups_of(SERVED[r] for r in roles), client)
    y = log_target(enriched)
    start, training, test = splits(enriched)
    folds = grouped_folds(enriched, settings.n_folds, settings.seed)
    predictions: dict[str, dict[Role, np.ndarray]] = {}
    for name, rows in training.items():
        predictions[name] = {}
        for role in roles:
            model = served_maker(SERVED[role], settings, report.sha256)().fit(enriched.iloc[rows])
            predictions[name][role] = model.predict_log(enriched.iloc[test])
    cv = {
        role: cross_validate(role, served_maker(SERVED[role], settings, report.sha256), enriched, folds, False).oof_log[
            test
        ]
        for role in roles
    }
    predictions["grouped 5-fold CV (out of fold)"] = cv
    rows_out: list[dict[str, Any]] = []
    for name, by_role in predictions.items():
        for role, pred in by_role.items():
            own, paired = bootstrap_intervals(
                y[test], pred, by_role[Role.CONTENT] if role != Role.CONTENT else None, seed=settings.seed
            )
            n_train = (
                len(training[name]) if name in training else len(enriched) * (settings.n_folds - 1) // settings.n_folds
            )
            rows_out.append(
                {
                    "protocol": name,
                    "role": str(role),
                    "n_train": int(n_train),
                    "spearman": own["spearman"],
                    "rmse": own["rmse"],
                    "vs_content_spearman": paired.get("spearman"),
                }
            )
    result = {
        "test_from": start.isoformat(),
        "n_test": len(test),
        "test_median_score": float(enriched["score"].iloc[test].median()),
        "seconds": round(time.perf_counter() - started),
        "rows": rows_out,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "temporal.json").write_text(json.dumps(result, indent=1))
    (args.out / "temporal.md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Forward in time",
        "",
        f"Generated by `python scripts/temporal.py` ({result['seconds']} s). Test posts: the latest"
        f" {TEST_SHARE:.0%} of the 2022 posts, {result['n_test']} posts written from {result['test_from'][:10]} on"
        f" (median score {result['test_median_score']:.0f}). Each protocol's models predict exactly these posts;"
        " intervals are 95% bootstrap percentiles over them, the hybrid's difference to content paired.",
        "",
        "| protocol | model | training posts | Spearman [95% CI] | RMSE log1p [95% CI] |"
        " Δ Spearman vs content [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        delta = ci_text(r["vs_content_spearman"], True) if r["vs_content_spearman"] else ""
        lines.append(
            f"| {r['protocol']} | {r['role']} | {r['n_train']:,} | {ci_text(r['spearman'])} | {ci_text(r['rmse'])} |"
            f" {delta} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
