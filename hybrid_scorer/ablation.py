"""Ablation: every feature group on the same folds and LightGBM parameters, with bootstrap intervals,
paired deltas against the content model, LLM cost and predict latency; written as markdown + PNGs."""

from __future__ import annotations

import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_scorer.baselines import MedianBaseline, RandomForestBaseline
from hybrid_scorer.config import Settings
from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import CVResult, cross_conformal, cross_validate
from hybrid_scorer.features.matrix import CONTENT_GROUPS, llm_needs
from hybrid_scorer.fits import CrossFit, cross_fit
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.usage import LLMOutput
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import Job
from hybrid_scorer.quality import METRICS, bootstrap_intervals
from hybrid_scorer.report import Comparison, IntervalRow, Results, Row, sync_docs, write_report
from hybrid_scorer.roles import Role
from hybrid_scorer.specs import (
    CONTENT,
    CONTENT_EMBEDDING,
    FULL_HYBRID,
    INTERVAL_SCHEME,
    SERVED,
    STACKED,
    TIME_TREND,
    Config,
    groups_of,
    served_maker,
)
from hybrid_scorer.target import log_target
from hybrid_scorer.tracking import log_run
from hybrid_scorer.version import __version__

MEDIAN = Config("median", "median baseline", baseline=lambda settings: MedianBaseline())
RANDOM_FOREST = Config(
    "tfidf_random_forest",
    "TF-IDF + RandomForest baseline",
    baseline=lambda settings: RandomForestBaseline(seed=settings.seed),
)
EVALUATE_CONFIGS = [MEDIAN, RANDOM_FOREST, CONTENT, TIME_TREND]
ABLATION_CONFIGS = [
    MEDIAN,
    RANDOM_FOREST,
    Config("text_stats", "text_stats", ("text_stats",)),
    Config("tfidf", "tfidf", ("tfidf",)),
    Config("text_stats_tfidf", "text_stats + tfidf", ("text_stats", "tfidf")),
    CONTENT,
    Config("llm_ratings", "LLM ratings alone", ("llm_ratings",)),
    Config("content_llm_ratings", "content + LLM ratings", (*CONTENT_GROUPS, "llm_ratings")),
    Config("text_stats_llm_embedding", "text_stats + LLM embedding (no TF-IDF)", ("text_stats", "llm_embedding")),
    CONTENT_EMBEDDING,
    Config("content_llm_stack", "content + stacked embedding features (no PCA)", (*CONTENT_GROUPS, "llm_stack")),
    FULL_HYBRID,
    STACKED,
    TIME_TREND,
]
# Paired comparisons the report adds to the "vs content" deltas: (configuration, its baseline).
COMPARISONS = [(STACKED, FULL_HYBRID), (FULL_HYBRID, CONTENT_EMBEDDING)]


def run_configs(
    enriched: pd.DataFrame,
    configs: list[Config],
    settings: Settings,
    progress: bool = True,
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[CVResult]:
    """Cross-validate every config, with LightGBM's defaults, on one set of grouped folds (posts already
    carry their LLM columns)."""
    folds = folds if folds is not None else grouped_folds(enriched, settings.n_folds, settings.seed)
    return [cross_validate(c.name, partial(c.make, settings), enriched, folds, progress) for c in configs]


def served_fits(
    enriched: pd.DataFrame, configs: list[Config], settings: Settings, data_sha256: str, progress: bool = True
) -> dict[Config, CrossFit]:
    """The served models among `configs`, cross-fitted as `train` fits them (specs.served_maker: tuned
    parameters, heads; the same grouped folds), so the row labelled served is the model `predict()`
    answers with; the fit cache (fits.py) hands `train` the same fits afterwards."""
    served = [c for c in configs if c in SERVED.values()]
    return {
        c: cross_fit(
            served_maker(c, settings, data_sha256)(),
            enriched,
            settings.n_folds,
            settings.seed,
            progress,
            settings.fits_dir,
            c.name,
        )
        for c in served
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _git_state() -> str:
    """The commit, and whether tracked code differed from it (a dirty tree's numbers are not that commit's)."""
    dirty = _git("status", "--porcelain", "--", "hybrid_scorer", "prompts", "pyproject.toml")
    return f"{_git('rev-parse', '--short', 'HEAD')}" + (" (tree dirty: uncommitted changes)" if dirty else " (clean)")


def llm_cost(client: LLMClient | None, groups: tuple[str, ...], n_posts: int) -> tuple[float, float, float]:
    """Tokens, LLM seconds and dollars per 1,000 posts to produce this config's LLM features."""
    if client is None:
        return 0.0, 0.0, 0.0
    kinds = {output.value for output in llm_needs(groups)}
    if LLMOutput.EMBEDDING in llm_needs(groups) and client.one_pass:
        # the embedding comes out of the assessment pass: the pass's record is the cost (an embedding's own
        # record, when the pass ran for it, repeats the pass's time)
        kinds = (kinds - {LLMOutput.EMBEDDING.value}) | {LLMOutput.ASSESSMENT.value}
    produced = client.ledger.subset(kinds).summary()
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


def run_ablation(job: Job, out_dir: Path, n_boot: int = 1000, docs: list[Path] | None = None) -> Path:
    """Every configuration on the same folds, bootstrap statistics, the report and an MLflow run."""
    settings = job.settings
    client = job.client()
    configs = ABLATION_CONFIGS if client else [c for c in ABLATION_CONFIGS if not c.uses_llm]
    started = time.perf_counter()
    enriched = job.enriched(groups_of(configs), client)
    folds = grouped_folds(enriched, settings.n_folds, settings.seed)
    fitted = served_fits(enriched, configs, settings, job.report.sha256, job.progress)
    others = [c for c in configs if c not in fitted]
    by_config = dict(zip(others, run_configs(enriched, others, settings, job.progress, folds), strict=True))
    by_config |= {c: f.cv for c, f in fitted.items()}
    results = [by_config[c] for c in configs]
    y_log = log_target(job.posts)
    content_oof = by_config[CONTENT].oof_log
    final = SERVED[Role.HYBRID] if client else CONTENT
    served = {c: f.scorer for c, f in fitted.items()}
    rows = []
    for config, result in zip(configs, results, strict=True):
        intervals, delta = bootstrap_intervals(y_log, result.oof_log, content_oof, n_boot, settings.seed)
        model = served.get(config)
        predict_ms = _predict_latency_ms(model, enriched, settings.seed) if model else float("nan")
        tokens, seconds, usd = llm_cost(client, config.groups, len(enriched))
        rows.append(
            Row(
                key=config.key,
                name=config.name,
                intervals=intervals,
                delta_vs_content=delta,
                fold_spearman_mean=result.mean("spearman"),
                fold_spearman_std=result.std("spearman"),
                llm_tokens_per_1k=tokens,
                llm_seconds_per_1k=seconds,
                llm_usd_per_1k=usd,
                result=result,
                predict_ms=predict_ms,
            )
        )
    final_model = served[final]
    by_key = {c.key: r for c, r in zip(configs, results, strict=True)}
    comparisons = [
        Comparison(
            key=c.key,
            baseline=b.key,
            delta=bootstrap_intervals(y_log, by_key[c.key].oof_log, by_key[b.key].oof_log, n_boot, settings.seed)[1],
        )
        for c, b in COMPARISONS
        if c.key in by_key and b.key in by_key
    ]
    interval_rows = []
    for config in served:  # the served intervals, calibrated as train does, measured on the outer folds
        outer = by_key[config.key]
        check = cross_conformal(outer, y_log, folds, (INTERVAL_SCHEME,))[INTERVAL_SCHEME]
        interval_rows += IntervalRow.rows(config, check, y_log, outer.oof_log)
    print(f"ablation: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    prompt = f"{client.spec} (prompt {client.prompt.id})" if client else "none"
    header = {
        "data file sha256": job.report.sha256,
        "posts after cleaning and deduplication": str(len(enriched)),
        "protocol": f"{settings.n_folds}-fold CV grouped by normalized title, stratified on log-score deciles,"
        f" seed {settings.seed}; {n_boot} bootstrap resamples over posts for 95% intervals",
        "LLM spec": prompt,
        "package version": __version__,
        "git commit": _git_state(),
    }
    path = write_report(out_dir, rows, enriched, final, final_model, header, comparisons, interval_rows)
    if docs:
        sync_docs(docs, Results.model_validate_json((out_dir / "ablation.json").read_text()))
    log_run(
        "ablate",
        params={"data_sha256": job.report.sha256, "llm": job.llm, "seed": settings.seed, "n_boot": n_boot},
        metrics={f"ablation.{r.key}.{m}": r.intervals[m][0] for r in rows for m in METRICS},
        artifact_paths=[path, out_dir / "ablation.json", *sorted(out_dir.glob("*.png"))],
        tags={f"label.{r.key}": r.name for r in rows},
    )
    return path
