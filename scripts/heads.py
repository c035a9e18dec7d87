"""How many boosting rounds the served models' heads need: the heads (quantiles for the intervals, p_top)
were trained with the point model's round count, so one prediction walked six forests of its size.

For each served model (content, and the hybrid when the LLM cache is there), on the evaluation folds:
the served model with its heads at the point model's round count, fitted on each training fold. A
boosted model's first k trees are the model trained for k rounds (no early stopping, same seed), so each
head cut to k trees (k in --rounds) is that head trained for k rounds. The intervals are calibrated
cross-conformally as the ablation does (each fold's bounds from the other folds' out-of-fold
predictions), for every k. Reported per k: the mean interval (Winkler) score at 80% and 90% with a paired
95% bootstrap interval of its difference to the full heads, coverage, p_top's Brier score, and the row
path's time for one post through the point model and every head (median of 300 posts, one thread).

The rule, fixed before the run: serve the smallest k whose interval score at both levels is within 1%
of the full heads' (the upper end of the paired interval) with coverage within one point of its level.

Writes reports/heads.{md,json}. Usage: python scripts/heads.py [--data CSV] [--llm embedded|none]
[--rounds 25 50 100 200 400]"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from tqdm import tqdm

if __package__ in (None, ""):  # run as `python scripts/heads.py`: the repository root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.parity import served_rows
from hybrid_scorer.config import get_settings
from hybrid_scorer.data import deduplicate, grouped_folds, load_posts, prepare_posts
from hybrid_scorer.evaluation import CVResult, cross_conformal
from hybrid_scorer.features.base import PostRow
from hybrid_scorer.intervals import LEVELS, interval_score
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import Job
from hybrid_scorer.specs import INTERVAL_SCHEME, SERVED, served_maker
from hybrid_scorer.target import TOP_SCORE, log_target

TOLERANCE = 0.01  # the rule's 1% on the interval score


def truncated(model: HybridScorer, rounds: int) -> HybridScorer:
    """The fitted model with every head cut to its first `rounds` trees (the point model untouched)."""
    heads = {h: lgb.Booster(model_str=b.model_to_string(num_iteration=rounds)) for h, b in model.heads_.items()}
    twin = HybridScorer(**model.get_params())
    return twin._set_fitted(model.features_, model.booster_, model.manifest_, heads)


def row_ms(model: HybridScorer, rows: list[PostRow]) -> float:
    """Median ms of the row path (point and every head) over these posts."""
    times = []
    for row in rows:
        started = time.perf_counter()
        model.score(row)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def paired_ratio(score: np.ndarray, full: np.ndarray, seed: int, n_boot: int = 1000) -> tuple[float, float, float]:
    """mean(score) / mean(full) - 1 over posts, with a 95% bootstrap interval (the same posts resampled)."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(score), len(score)) for _ in range(n_boot)]
    ratios = [score[i].mean() / full[i].mean() - 1 for i in draws]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(score.mean() / full.mean() - 1), float(low), float(high)


def measure(role: str, enriched: pd.DataFrame, job: Job, candidates: list[int], timed: list[PostRow]) -> dict:
    settings = job.settings
    config = SERVED[role]
    served = served_maker(config, settings, job.report.sha256)

    def make() -> HybridScorer:  # the served model, its heads at the point model's round count
        return served().set_params(head_rounds=None)

    full = make().num_boost_round
    rounds = sorted({*(k for k in candidates if k < full), full})
    y = log_target(enriched)
    folds = grouped_folds(enriched, settings.n_folds, settings.seed)
    outers = {k: CVResult(f"heads@{k}", np.full(len(y), np.nan), []) for k in rounds}
    ms: dict[int, list[float]] = {k: [] for k in rounds}
    for train_idx, test_idx in tqdm(folds, desc=f"{role}: folds", leave=False):
        model = make().fit(enriched.iloc[train_idx])
        held_out = enriched.iloc[test_idx]
        point = model.predict_log(held_out)
        for k in rounds:
            cut = truncated(model, k)
            outers[k].oof_log[test_idx] = point
            for head, values in cut.score(held_out).heads.items():
                outers[k].oof_heads.setdefault(head, np.full(len(y), np.nan))[test_idx] = values
            ms[k].append(row_ms(cut, timed))
    top = (enriched["score"].to_numpy() >= TOP_SCORE).astype(float)
    scores: dict[int, dict[float, np.ndarray]] = {}
    rows = []
    for k in rounds:
        check = cross_conformal(outers[k], y, folds, (INTERVAL_SCHEME,))[INTERVAL_SCHEME]
        scores[k] = {level: interval_score(y, check.low[level], check.high[level], level) for level in LEVELS}
        row: dict[str, Any] = {"rounds": k, "row_ms": float(np.median(ms[k]))}
        for level in LEVELS:
            inside = (y >= check.low[level]) & (y <= check.high[level])
            row[f"score_{level:.0%}"] = float(scores[k][level].mean())
            row[f"coverage_{level:.0%}"] = float(inside.mean())
        p_top = outers[k].oof_heads.get("p_top")
        row["p_top_brier"] = float(np.mean((p_top - top) ** 2)) if p_top is not None else None
        rows.append(row)
    for row in rows:  # every k against the full heads, on the same resampled posts
        for level in LEVELS:
            row[f"vs_full_{level:.0%}"] = paired_ratio(scores[row["rounds"]][level], scores[full][level], settings.seed)
    chosen = next((r["rounds"] for r in rows if _passes(r)), full)
    return {"role": role, "config": config.key, "point_rounds": full, "rows": rows, "chosen": chosen}


def _passes(row: dict[str, Any]) -> bool:
    return all(
        row[f"vs_full_{level:.0%}"][2] <= TOLERANCE and abs(row[f"coverage_{level:.0%}"] - level) <= 0.01
        for level in LEVELS
    )


def render(results: list[dict], protocol: str) -> str:
    lines = [
        "# Heads' round count",
        "",
        "Generated by `python scripts/heads.py`. " + protocol,
        "",
    ]
    for result in results:
        lines += [
            f"## {result['role']} ({result['config']}, point model {result['point_rounds']} rounds)",
            "",
            "| head rounds | row path ms (point + heads) | interval score 80% | vs full heads [95% CI] |"
            " interval score 90% | vs full heads [95% CI] | coverage 80% | coverage 90% | p_top Brier |",
            "|" + "---|" * 9,
        ]
        for r in result["rows"]:
            ratio = {lv: "{:+.1%} [{:+.1%}, {:+.1%}]".format(*r[f"vs_full_{lv}%"]) for lv in (80, 90)}
            brier = "" if r["p_top_brier"] is None else f"{r['p_top_brier']:.4f}"
            lines.append(
                f"| {r['rounds']}{' (chosen)' if r['rounds'] == result['chosen'] else ''} | {r['row_ms']:.3f} |"
                f" {r['score_80%']:.3f} | {ratio[80]} | {r['score_90%']:.3f} | {ratio[90]} |"
                f" {r['coverage_80%']:.1%} | {r['coverage_90%']:.1%} | {brier} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--llm", default="embedded", help="LLM spec whose cached features the hybrid uses, or none")
    parser.add_argument("--rounds", type=int, nargs="+", default=[25, 50, 100, 200, 400])
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    started = time.perf_counter()
    settings = get_settings(data_path=args.data)
    posts, report = prepare_posts(settings.data_path)
    raw = deduplicate(load_posts(settings.data_path))
    job = Job(posts, report, settings, args.llm, progress=False)
    client = job.client()
    roles = ["content", *(["hybrid"] if client is not None else [])]
    results = []
    for role in roles:
        enriched = job.enriched(SERVED[role].groups, client)
        timed = served_rows(raw.head(300), client, SERVED[role].groups)
        results.append(measure(role, enriched, job, args.rounds, timed))
        print(f"{role}: {time.perf_counter() - started:.0f} s", flush=True)
    protocol = (
        f"{settings.n_folds} grouped folds (seed {settings.seed}), {INTERVAL_SCHEME} intervals calibrated"
        f" cross-conformally; row path timed on 300 posts per fold model, median over folds"
        f" ({time.perf_counter() - started:.0f} s in all)."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heads.json").write_text(json.dumps({"protocol": protocol, "results": results}, indent=1))
    (args.out / "heads.md").write_text(render(results, protocol))
    print(render(results, protocol))


if __name__ == "__main__":
    main()
