"""Prometheus recording and alert rules for the service, as code: rendered from MonitorThresholds, so
Prometheus alerts on the same thresholds `hybrid-scorer monitor` flags. `deploy/prometheus/rules.yml` is
this module's output with the default thresholds (tests/test_production.py checks they agree, promtool
checks the file and runs its unit tests in deploy/prometheus/rules_test.yml);
`hybrid-scorer alert-rules` writes it for other thresholds (HYBRID_SCORER_MONITOR).

What the monitor computes from the log alone (input and prediction drift) stays in the monitor: the
service does not export distributions. Realised quality is exported from the outcome store and alerted
on against the served model's own expected-Spearman interval."""

from __future__ import annotations

from dataclasses import dataclass

from hybrid_scorer.config import MonitorThresholds


@dataclass(frozen=True)
class Rule:
    name: str  # `record` name or `alert` name
    expr: str
    alert: bool = False
    for_: str = ""
    summary: str = ""
    severity: str = "warning"


def rules(t: MonitorThresholds) -> tuple[list[Rule], list[Rule]]:
    """(recording rules, alert rules)."""
    recording = [
        Rule(
            "hybrid_scorer:predict_latency_seconds:p99_5m",
            "histogram_quantile(0.99, sum by (le) ("
            'rate(hybrid_scorer_http_request_duration_seconds_bucket{route="/v1/predict"}[5m])))',
        ),
        Rule(
            "hybrid_scorer:fallback_ratio:rate5m",
            "sum by (reason) (rate(hybrid_scorer_fallbacks_total[5m]))"
            " / scalar(sum(rate(hybrid_scorer_predictions_total[5m])))",
        ),
        Rule(
            "hybrid_scorer:llm_failure_ratio:rate5m",
            "sum by (kind) (rate(hybrid_scorer_llm_failures_total[5m]))"
            " / scalar(sum(rate(hybrid_scorer_llm_calls_total[5m])))",
        ),
        Rule(
            "hybrid_scorer:llm_cache_hit_ratio:rate5m",
            "sum(rate(hybrid_scorer_llm_cache_hits_total[5m])) / sum(rate(hybrid_scorer_llm_calls_total[5m]))",
        ),
        Rule(
            "hybrid_scorer:steered_ratio:rate15m",
            "sum(rate(hybrid_scorer_steered_predictions_total[15m])) / sum(rate(hybrid_scorer_predictions_total[15m]))",
        ),
        Rule("hybrid_scorer:llm_cost_dollars:increase1h", "sum(increase(hybrid_scorer_llm_cost_dollars_total[1h]))"),
    ]
    alerts = [
        Rule(
            "HybridScorerPredictLatencyHigh",
            f"hybrid_scorer:predict_latency_seconds:p99_5m > {t.p99_latency_ms / 1000:g}",
            True,
            "10m",
            f"p99 of /v1/predict above {t.p99_latency_ms:g} ms for 10 minutes",
        ),
        Rule(
            "HybridScorerFallbacksHigh",
            f"sum(hybrid_scorer:fallback_ratio:rate5m) > {t.fallback_rate:g}",
            True,
            "5m",
            f"more than {t.fallback_rate:.0%} of posts scored by the content model (see fallback_ratio by reason)",
        ),
        Rule(
            "HybridScorerLLMFailuresHigh",
            f"hybrid_scorer:llm_failure_ratio:rate5m > {t.llm_failure_rate:g}",
            True,
            "5m",
            f"LLM failures of kind {{{{ $labels.kind }}}} above {t.llm_failure_rate:.0%} of LLM calls",
        ),
        Rule(
            "HybridScorerCacheHitRateLow",
            f"hybrid_scorer:llm_cache_hit_ratio:rate5m < {t.min_cache_hit_rate:g}",
            True,
            "15m",
            f"LLM cache hit rate below {t.min_cache_hit_rate:.0%}",
            "info",
        ),
        Rule(
            "HybridScorerLLMSpendHigh",
            f"hybrid_scorer:llm_cost_dollars:increase1h > {t.llm_usd_per_hour:g}",
            True,
            "0m",
            f"LLM spend above ${t.llm_usd_per_hour:g} in the last hour",
        ),
        Rule(
            "HybridScorerLLMBudgetExhausted",
            'increase(hybrid_scorer_fallbacks_total{reason="budget"}[10m]) > 0',
            True,
            "0m",
            "the LLM spend limit is reached: new posts are scored without the LLM",
        ),
        Rule(
            "HybridScorerSteeredPostsHigh",
            f"hybrid_scorer:steered_ratio:rate15m > {t.steered_rate:g}",
            True,
            "15m",
            f"more than {t.steered_rate:.0%} of posts carry one sentence that raises their score past its limit:"
            " an attack campaign, or posts unlike the training data (see the steering field in the log)",
        ),
        Rule(
            "HybridScorerNotReady",
            "hybrid_scorer_ready == 0 or absent(hybrid_scorer_ready)",
            True,
            "5m",
            "the service is not ready (or not scraped): see /readyz",
            "critical",
        ),
        Rule(
            "HybridScorerRealisedQualityLow",
            "hybrid_scorer_realised_spearman < on() group_left() hybrid_scorer_expected_spearman_low",
            True,
            "1h",
            "realised Spearman of cohort {{ $labels.cohort }} is below the served model's expected interval",
            "critical",
        ),
    ]
    return recording, alerts


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render_rules(t: MonitorThresholds) -> str:
    """The rules file, in Prometheus' YAML format."""
    recording, alerts = rules(t)
    lines = [
        "# Generated by `hybrid-scorer alert-rules` from MonitorThresholds (hybrid_scorer/config.py): do not edit.",
        "groups:",
        "  - name: hybrid-scorer-recording",
        "    rules:",
    ]
    for r in recording:
        lines += [f"      - record: {r.name}", f"        expr: {_quote(r.expr)}"]
    lines += ["  - name: hybrid-scorer-alerts", "    rules:"]
    for r in alerts:
        lines += [
            f"      - alert: {r.name}",
            f"        expr: {_quote(r.expr)}",
            f"        for: {r.for_}",
            "        labels:",
            f"          severity: {r.severity}",
            "        annotations:",
            f"          summary: {_quote(r.summary)}",
        ]
    return "\n".join(lines) + "\n"
