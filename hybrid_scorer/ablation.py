"""Ablation: every feature group on the same folds and LightGBM parameters, with bootstrap intervals,
paired deltas against the content model, LLM cost and predict latency; written as markdown + PNGs."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from hybrid_scorer import __version__
from hybrid_scorer.baselines import MedianBaseline, RandomForestBaseline
from hybrid_scorer.config import Settings
from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import (
    METRICS,
    CVResult,
    Interval,
    LogScoreEstimator,
    bootstrap_intervals,
    cross_validate,
)
from hybrid_scorer.features.matrix import CONTENT_GROUPS, LLM_GROUPS
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import Job, with_llm_columns

CONTENT = "content (text_stats+tfidf+meta)"


@dataclass(frozen=True)
class Config:
    name: str
    groups: tuple[str, ...] = ()
    estimator: Literal["lightgbm", "median", "random_forest"] = "lightgbm"

    def make(self, settings: Settings) -> LogScoreEstimator:
        if self.estimator == "median":
            return MedianBaseline()
        if self.estimator == "random_forest":
            return RandomForestBaseline(seed=settings.seed)
        return HybridScorer(
            self.groups,
            seed=settings.seed,
            feature_options={"llm_embedding": {"n_components": settings.embedding_components, "seed": settings.seed}},
        )


BASELINES = [
    Config("median baseline", estimator="median"),
    Config("TF-IDF + RandomForest baseline", estimator="random_forest"),
]
CONTENT_CONFIG = Config(CONTENT, CONTENT_GROUPS)
TIME_TREND = Config("content + time_trend (sampling artifact)", (*CONTENT_GROUPS, "time_trend"))
EVALUATE_CONFIGS = [*BASELINES, CONTENT_CONFIG, TIME_TREND]


def hybrid_configs() -> list[Config]:
    return [
        Config("LLM ratings alone", ("llm_ratings",)),
        Config("content + LLM ratings", (*CONTENT_GROUPS, "llm_ratings")),
        Config("text_stats + LLM embedding (no TF-IDF)", ("text_stats", "llm_embedding")),
        Config("content + LLM embedding", (*CONTENT_GROUPS, "llm_embedding")),
        Config("full hybrid (content + LLM ratings + embedding)", (*CONTENT_GROUPS, "llm_ratings", "llm_embedding")),
    ]


ABLATION_CONFIGS = [
    *BASELINES,
    Config("text_stats", ("text_stats",)),
    Config("tfidf", ("tfidf",)),
    Config("text_stats + tfidf", ("text_stats", "tfidf")),
    CONTENT_CONFIG,
    *hybrid_configs(),
    TIME_TREND,
]
FULL_HYBRID = hybrid_configs()[-1]


def groups_of(configs: list[Config]) -> list[str]:
    return sorted({g for c in configs for g in c.groups})


def run_configs(
    enriched: pd.DataFrame, configs: list[Config], settings: Settings, progress: bool = True
) -> list[CVResult]:
    """Cross-validate every config on one set of grouped folds (posts already carry their LLM columns)."""
    folds = grouped_folds(enriched, settings.n_folds, settings.seed)
    return [cross_validate(c.name, partial(c.make, settings), enriched, folds, progress) for c in configs]


def render_fold_table(results: list[CVResult]) -> str:
    """Mean ± std over folds for each config, as a markdown table."""
    lines = ["| configuration | Spearman | RMSE log1p | MAE log1p | R2 |", "|---|---|---|---|---|"]
    for r in results:
        cells = " | ".join(f"{r.mean(m):.3f} ± {r.std(m):.3f}" for m in METRICS)
        lines.append(f"| {r.name} | {cells} |")
    return "\n".join(lines)


@dataclass
class Row:
    result: CVResult
    intervals: dict[str, Interval]
    delta: dict[str, Interval]
    llm_tokens_per_1k: float
    llm_seconds_per_1k: float
    llm_usd_per_1k: float
    predict_ms: float


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _llm_cost(client: LLMClient | None, groups: tuple[str, ...], n_posts: int) -> tuple[float, float, float]:
    """Tokens, LLM seconds and dollars per 1,000 posts to produce this config's LLM features."""
    if client is None:
        return 0.0, 0.0, 0.0
    kinds = {"llm_ratings": "assess", "llm_embedding": "embed"}
    produced = client.ledger.subset({kinds[g] for g in groups if g in kinds}).summary()
    scale = 1000.0 / max(n_posts, 1)
    return produced.produced_tokens * scale, produced.produced_llm_seconds * scale, produced.produced_cost_usd * scale


def _predict_latency_ms(model: HybridScorer, posts: pd.DataFrame, seed: int, n: int = 200) -> float:
    """Median ms to score one post with precomputed LLM columns (the model's own cost)."""
    sample = posts.sample(min(n, len(posts)), random_state=seed)
    timings = []
    for i in range(len(sample)):
        started = time.perf_counter()
        model.predict_log(sample.iloc[[i]])
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))


def _fit_scorer(config: Config, posts: pd.DataFrame, settings: Settings) -> HybridScorer:
    model = config.make(settings).fit(posts)
    assert isinstance(model, HybridScorer)
    return model


def run_ablation(job: Job, out_dir: Path, n_boot: int = 1000) -> Path:
    """Every configuration on the same folds, bootstrap statistics, the report and an MLflow run."""
    from hybrid_scorer.report import write_report
    from hybrid_scorer.tracking import log_run

    settings = job.settings
    client = job.client()
    configs = ABLATION_CONFIGS if client else [c for c in ABLATION_CONFIGS if not set(c.groups) & set(LLM_GROUPS)]
    started = time.perf_counter()
    enriched = with_llm_columns(job.posts, groups_of(configs), client, job.concurrency, job.progress)
    results = run_configs(enriched, configs, settings, job.progress)
    y_log = np.log1p(job.posts["score"].to_numpy(np.float64))
    content_oof = next(r.oof_log for r in results if r.name == CONTENT)
    final = FULL_HYBRID if client else CONTENT_CONFIG
    served = {c: _fit_scorer(c, enriched, settings) for c in dict.fromkeys([CONTENT_CONFIG, final])}
    rows = []
    for config, result in zip(configs, results, strict=True):
        intervals, delta = bootstrap_intervals(y_log, result.oof_log, content_oof, n_boot, settings.seed)
        model = served.get(config)
        predict_ms = _predict_latency_ms(model, enriched, settings.seed) if model else float("nan")
        rows.append(Row(result, intervals, delta, *_llm_cost(client, config.groups, len(enriched)), predict_ms))
    final_model = served[final]
    print(f"ablation: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    prompt = f"{client.spec} (prompt {client.prompt.version}, sha256 {client.prompt.sha256[:12]})" if client else "none"
    header = {
        "data file sha256": job.report.sha256,
        "posts after cleaning and deduplication": str(len(enriched)),
        "protocol": f"{settings.n_folds}-fold CV grouped by normalized title, stratified on log-score deciles,"
        f" seed {settings.seed}; {n_boot} bootstrap resamples over posts for 95% intervals",
        "LLM spec": prompt,
        "package version": __version__,
        "git commit": _git_commit(),
    }
    path = write_report(out_dir, rows, enriched, final, final_model, header)
    log_run(
        "ablate",
        params={"data_sha256": job.report.sha256, "llm": job.llm, "seed": settings.seed, "n_boot": n_boot},
        metrics={f"{r.result.name}.{m}": r.intervals[m][0] for r in rows for m in METRICS},
        artifact_paths=[path, *sorted(out_dir.glob("*.png"))],
    )
    return path
