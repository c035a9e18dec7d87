"""Drift and health of the prediction service, against a reference saved at training time.

PSI for numeric inputs and predictions (decile bins of the reference), Jensen-Shannon distance and a
chi-square test for categories (flair, LLM topic); latency percentiles, throughput, cache hit, LLM
failure, fallback and out-of-range rates from the prediction log. Thresholds are configurable."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from scipy.stats import chisquare

from hybrid_scorer.config import MonitorThresholds
from hybrid_scorer.errors import MissingArtifactError
from hybrid_scorer.intervals import level_percent
from hybrid_scorer.outcomes import CohortQuality, OutcomeStore, outcomes_path, realised_quality, store_url
from hybrid_scorer.roles import SERVING_ORDER

log = logging.getLogger(__name__)

NUMERIC_SIGNALS = (
    "title_chars",
    "body_chars",
    "llm_predicted_interest_expected",
    "llm_question_clarity_expected",
    "log_prediction",
)
CATEGORICAL_SIGNALS = ("flair", "llm_topic")
# LLM columns the prediction log records per prediction and the training reference holds
SIGNAL_COLUMNS = ("llm_topic", "llm_predicted_interest_expected", "llm_question_clarity_expected")
_EPS = 1e-4


def numeric_reference(values: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Decile edges of the reference and the share of reference values in each bin."""
    values = values[np.isfinite(values)]
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1))[1:-1])
    return {"edges": edges.tolist(), "shares": _shares(values, edges).tolist()}


def categorical_reference(values: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.fillna("missing").value_counts(normalize=True).items()}


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def psi(reference: dict[str, Any], values: np.ndarray) -> float:
    """Population stability index = sum (a - e) ln(a / e) = KL(a||e) + KL(e||a) on the reference bins."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan")
    expected = np.clip(np.asarray(reference["shares"]), _EPS, None)
    actual = np.clip(_shares(values, np.asarray(reference["edges"])), _EPS, None)
    return float(np.sum(rel_entr(actual, expected) + rel_entr(expected, actual)))


def category_drift(reference: dict[str, float], values: pd.Series) -> tuple[float, float]:
    """(Jensen-Shannon distance, chi-square p-value) of observed categories vs the reference shares."""
    observed = values.fillna("missing").astype(str).value_counts()
    if observed.sum() == 0:
        return float("nan"), float("nan")
    categories = sorted(set(reference) | set(observed.index))
    expected_share = np.array([reference.get(c, 0.0) for c in categories]) + _EPS
    expected_share /= expected_share.sum()
    counts = np.array([observed.get(c, 0) for c in categories], dtype=float)
    distance = float(jensenshannon(counts / counts.sum(), expected_share, base=2))
    p_value = float(chisquare(counts, expected_share * counts.sum()).pvalue)
    return distance, p_value


def build_reference(frame: pd.DataFrame) -> dict[str, Any]:
    """Reference distributions from a frame with the signal columns (training posts + their predictions)."""
    return {
        "numeric": {
            s: numeric_reference(frame[s].to_numpy(float))
            for s in NUMERIC_SIGNALS
            if s in frame and frame[s].notna().any()
        },
        "categorical": {s: categorical_reference(frame[s]) for s in CATEGORICAL_SIGNALS if s in frame},
    }


def read_log(path: Path) -> pd.DataFrame:
    """All prediction records, rotated files included (oldest first)."""
    rotated = [p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()]
    files = [*sorted(rotated, key=lambda p: -int(p.suffix[1:])), path]
    records, unreadable = [], 0
    for f in (f for f in files if f.is_file()):
        for line in filter(str.strip, f.read_text(errors="replace").splitlines()):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a writer killed mid-line leaves half a record: the rest still counts
                unreadable += 1
    if unreadable:
        log.warning("%s: skipped %d line(s) that are not JSON records (a writer cut short?)", path, unreadable)
    return pd.json_normalize(records) if records else pd.DataFrame()


def summarize(
    log: pd.DataFrame, reference: dict[str, Any] | None, thresholds: MonitorThresholds
) -> tuple[dict[str, float], list[str]]:
    """Service and drift metrics from the log, and the alerts for thresholds that are crossed."""
    metrics: dict[str, float] = {"predictions": float(len(log))}
    if log.empty:
        return metrics, []
    latency = log["latency_ms"].to_numpy(float)
    span_s = (pd.to_datetime(log["timestamp"]).max() - pd.to_datetime(log["timestamp"]).min()).total_seconds()
    llm_called = log["llm_called"].astype(bool)
    metrics.update(
        {
            "p50_latency_ms": float(np.percentile(latency, 50)),
            "p95_latency_ms": float(np.percentile(latency, 95)),
            "p99_latency_ms": float(np.percentile(latency, 99)),
            "throughput_per_s": len(log) / span_s if span_s > 0 else float("nan"),
            "cache_hit_rate": float(log.loc[llm_called, "cache_hit"].mean()) if llm_called.any() else float("nan"),
            "llm_failure_rate": float(log.loc[llm_called, "llm_failure"].notna().mean()) if llm_called.any() else 0.0,
            "fallback_rate": float(log["fallback"].mean()),
            "steered_rate": float(log["steered"].fillna(False).mean()) if "steered" in log else 0.0,
            "llm_tokens": float(log["llm_tokens"].sum()),
            "llm_cost_usd": float(log["llm_cost_usd"].sum()) if "llm_cost_usd" in log else float("nan"),
            "llm_usd_last_hour": _last_hour_spend(log),
            "out_of_range_rate": float(log.get("features.llm_out_of_range", pd.Series([False])).fillna(False).mean()),
        }
    )
    for name, ref in (reference or {}).get("numeric", {}).items():
        column = "log_prediction" if name == "log_prediction" else f"features.{name}"
        if column in log:
            metrics[f"psi.{name}"] = psi(ref, log[column].to_numpy(float))
    for name, ref in (reference or {}).get("categorical", {}).items():
        if f"features.{name}" in log:
            metrics[f"js.{name}"], metrics[f"chi2_p.{name}"] = category_drift(ref, log[f"features.{name}"])
    return metrics, _alerts(metrics, thresholds)


def _last_hour_spend(log: pd.DataFrame) -> float:
    """LLM dollars of the predictions in the hour before the newest one."""
    if "llm_cost_usd" not in log:
        return float("nan")
    times = pd.to_datetime(log["timestamp"], utc=True, format="ISO8601")
    return float(log.loc[times > times.max() - pd.Timedelta(hours=1), "llm_cost_usd"].sum())


def _alerts(metrics: dict[str, float], t: MonitorThresholds) -> list[str]:
    checks = [(k, v, t.psi) for k, v in metrics.items() if k.startswith("psi.")]
    checks += [(k, v, t.js_distance) for k, v in metrics.items() if k.startswith("js.")]
    checks += [
        ("p99_latency_ms", metrics["p99_latency_ms"], t.p99_latency_ms),
        ("fallback_rate", metrics["fallback_rate"], t.fallback_rate),
        ("steered_rate", metrics["steered_rate"], t.steered_rate),
        ("llm_failure_rate", metrics["llm_failure_rate"], t.llm_failure_rate),
        ("out_of_range_rate", metrics["out_of_range_rate"], t.out_of_range_rate),
        ("llm_usd_last_hour", metrics["llm_usd_last_hour"], t.llm_usd_per_hour),
    ]
    alerts = [f"{k} = {v:.3f} > {limit}" for k, v, limit in checks if np.isfinite(v) and v > limit]
    hit = metrics.get("cache_hit_rate", float("nan"))
    if np.isfinite(hit) and hit < t.min_cache_hit_rate:
        alerts.append(f"cache_hit_rate = {hit:.3f} < {t.min_cache_hit_rate}")
    return alerts


def expected_spearman_low(model_dir: Path) -> float | None:
    """The lower end of the served model's expected Spearman interval (its manifest), the floor realised
    quality is held to."""
    for role in SERVING_ORDER:
        path = model_dir / role / "manifest.json"
        if path.is_file():
            metrics = json.loads(path.read_text()).get("metrics", {})
            low = metrics.get("expected_spearman_ci_low", metrics.get("cv_spearman_ci_low"))
            return float(low) if low is not None else None
    return None


def latest_judged(qualities: list[CohortQuality], min_labels: int) -> CohortQuality | None:
    """The newest cohort with enough labels to judge (None before there is one)."""
    return next((q for q in reversed(qualities) if q.labels >= min_labels), None)


def realised_report(store: OutcomeStore, model_dir: Path, thresholds: MonitorThresholds) -> tuple[list[str], list[str]]:
    """Lines for the realised quality per cohort, and the alert when the newest judged cohort's Spearman
    is below the model's expected interval."""
    counts = store.counts()
    qualities = realised_quality(store.joined(), thresholds.realised_cohort)
    lines = [
        f"realised quality (delayed labels, {store.where}): {counts['feedback']} labels for"
        f" {counts['predictions']} predictions ({counts['feedback_without_prediction']} without a known prediction)"
    ]
    lines += [
        f"  {q.cohort}: {q.labels} labels, Spearman {q.spearman[0]:.3f} [{q.spearman[1]:.3f}, {q.spearman[2]:.3f}],"
        f" RMSE log1p {q.rmse[0]:.3f}, coverage "
        + ", ".join(f"{level_percent(level)}% {share:.1%}" for level, share in q.coverage.items())
        for q in qualities
    ]
    judged, floor = latest_judged(qualities, thresholds.min_realised_labels), expected_spearman_low(model_dir)
    alerts = []
    if judged is not None and floor is not None and judged.spearman[0] < floor:
        alerts.append(
            f"realised Spearman {judged.spearman[0]:.3f} ({judged.cohort}, {judged.labels} labels) < {floor:.3f},"
            " the lower end of the model's expected interval"
        )
    return lines, alerts


def monitor_report(
    log_path: Path, model_dir: Path, thresholds: MonitorThresholds, database_url: str | None = None
) -> tuple[str, list[str]]:
    """Service and drift metrics from this process's log, realised quality from the outcome store: with
    `database_url` (shared by replicas) every replica's predictions and feedback, else the SQLite beside
    the log."""
    shared = database_url is not None
    if not log_path.exists() and not shared:
        raise MissingArtifactError(
            f"{log_path} not found: make predictions first (hybrid_scorer.predict or `hybrid-scorer predict`)"
        )
    reference_path = model_dir / "reference.json"
    reference = json.loads(reference_path.read_text()) if reference_path.is_file() else None
    metrics, alerts = summarize(read_log(log_path), reference, thresholds)
    lines = [
        f"prediction log: {log_path} ({int(metrics['predictions'])} predictions"
        + (", this replica's only)" if shared else ")"),
        f"reference: {reference_path if reference else 'none found (drift not computed)'}",
    ]
    lines += [f"  {k:<40} {v:.4f}" for k, v in metrics.items() if k != "predictions"]
    if shared or outcomes_path(log_path).is_file():
        store = OutcomeStore(store_url(database_url, log_path))
        realised, realised_alerts = realised_report(store, model_dir, thresholds)
        lines += realised
        alerts += realised_alerts
    lines += ["ALERTS:", *(f"  ! {a}" for a in alerts)] if alerts else ["no threshold crossed"]
    return "\n".join(lines), alerts
