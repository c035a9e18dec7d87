"""Prometheus metrics of the service, named by Prometheus conventions (base units, `_total` counters,
low-cardinality labels). One registry per app, so tests and several apps in one process never collide.

The service runs one worker process (the embedded LLM lives in it; a second worker would load a second
copy), so prometheus-client's single-process registry is exact; scale out with replicas, not workers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hybrid_scorer.errors import StoreUnavailableError
from hybrid_scorer.intervals import level_percent
from hybrid_scorer.llm.usage import LLMFailure
from hybrid_scorer.monitoring import expected_spearman_low, latest_judged
from hybrid_scorer.outcomes import realised_quality
from hybrid_scorer.serving.schemas import Prediction

if TYPE_CHECKING:
    from hybrid_scorer.serving.predictor import Predictor

log = logging.getLogger(__name__)
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RealisedQuality(Collector):
    """The newest judged cohort's realised quality, from the outcome store at scrape time (recomputed at
    most every `every_s`: a bootstrap over the cohort's labels), beside the floor the model is held to.
    An unreachable store keeps the last figures (the rest of the scrape must not fail with it)."""

    def __init__(self, current: Callable[[], Predictor], every_s: float = 60.0) -> None:
        self.current = current  # the predictor serving now (a reload swaps it)
        self.every_s = every_s
        self._at = -float("inf")
        self._families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        if time.monotonic() - self._at > self.every_s:
            self._at = time.monotonic()
            try:
                self._families = self._compute()
            except StoreUnavailableError as exc:
                log.warning("realised quality not refreshed: %s", exc)
        yield from self._families

    def _compute(self) -> list[Metric]:
        predictor = self.current()
        thresholds = predictor.settings.monitor
        qualities = realised_quality(predictor.outcomes.joined(), thresholds.realised_cohort)
        judged = latest_judged(qualities, thresholds.min_realised_labels)
        models = predictor.loaded_models
        floor = expected_spearman_low(models.model_dir) if models is not None else None
        families: list[Metric] = []
        if floor is not None:
            families.append(
                GaugeMetricFamily(
                    "hybrid_scorer_expected_spearman_low",
                    "Lower end of the served model's expected Spearman interval",
                    value=floor,
                )
            )
        if judged is not None:
            for name, value, doc in (
                ("spearman", judged.spearman[0], "Spearman of predictions and realised scores"),
                ("rmse", judged.rmse[0], "RMSE on log1p of predictions and realised scores"),
                *(
                    (f"coverage_{pct}", share, f"Share of realised scores inside the {pct}% interval")
                    for pct, share in ((level_percent(level), share) for level, share in judged.coverage.items())
                ),
                ("labels", judged.labels, "Realised scores in the cohort"),
            ):
                family = GaugeMetricFamily(
                    f"hybrid_scorer_realised_{name}", f"{doc}, newest judged cohort", labels=["cohort"]
                )
                family.add_metric([judged.cohort], float(value))
                families.append(family)
        return families


class StoreHealth(Collector):
    """Whether the outcome store keeps up, read at scrape time: writes that failed (the store unreachable),
    predictions waiting in this replica's backlog, and those dropped past its bound."""

    def __init__(self, current: Callable[[], Predictor]) -> None:
        self.current = current

    def collect(self) -> Iterator[Metric]:
        recorder = self.current().recorder
        failures = CounterMetricFamily(
            "hybrid_scorer_store_write_failures",
            "Outcome store writes that failed, by what was written",
            labels=["kind"],
        )
        for kind, count in recorder.store.failures.items():
            failures.add_metric([kind], count)
        yield failures
        yield GaugeMetricFamily(
            "hybrid_scorer_store_backlog", "Predictions waiting for the outcome store", value=recorder.backlog
        )
        yield CounterMetricFamily(
            "hybrid_scorer_store_dropped", "Predictions dropped past the backlog bound", value=recorder.dropped
        )


class ServiceMetrics:
    def __init__(self, current: Callable[[], Predictor] | None = None) -> None:
        """`current`: the predictor serving now, whose outcome store the realised-quality gauges read."""
        self.registry = CollectorRegistry()
        r = self.registry
        if current is not None:
            r.register(RealisedQuality(current))
            r.register(StoreHealth(current))
        self.requests = Counter(
            "hybrid_scorer_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "hybrid_scorer_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.in_flight = Gauge("hybrid_scorer_http_requests_in_flight", "HTTP requests being served", registry=r)
        self.predictions = Counter(
            "hybrid_scorer_predictions", "Posts scored, by the model that scored them", ["model"], registry=r
        )
        self.llm_seconds = Histogram(
            "hybrid_scorer_llm_call_duration_seconds",
            "Wall time of live (uncached) LLM work per prediction",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.llm_cache_hits = Counter(
            "hybrid_scorer_llm_cache_hits", "Predictions whose LLM answers were cached", registry=r
        )
        self.llm_failures = Counter("hybrid_scorer_llm_failures", "LLM failures by kind", ["kind"], registry=r)
        self.fallbacks = Counter(
            "hybrid_scorer_fallbacks",
            "Predictions served by the content model instead, by reason",
            ["reason"],
            registry=r,
        )
        self.steered = Counter(
            "hybrid_scorer_steered_predictions",
            "Predictions the steering check flagged: one part of the post raised the score past its limit",
            ["model"],
            registry=r,
        )
        self.llm_tokens = Counter("hybrid_scorer_llm_tokens", "LLM tokens spent on live calls", registry=r)
        self.llm_cost = Counter("hybrid_scorer_llm_cost_dollars", "Estimated LLM spend (USD)", registry=r)
        self.requests_by_key = Counter(
            "hybrid_scorer_requests_by_key",
            "Keyed requests by API key id (invalid: no valid key); as many labels as configured keys",
            ["key"],
            registry=r,
        )
        self.feedback = Counter("hybrid_scorer_feedback", "Realised scores received", registry=r)
        self.llm_calls = Counter("hybrid_scorer_llm_calls", "Predictions for which the LLM was asked", registry=r)
        self.ready = Gauge("hybrid_scorer_ready", "1 when the service is ready to score (readyz)", registry=r)
        self.reloads = Counter(
            "hybrid_scorer_model_reloads", "Model reloads (SIGHUP) by result", ["result"], registry=r
        )
        self.model_info = Gauge(
            "hybrid_scorer_model_info",
            "The served models (value 1)",
            ["role", "version", "llm", "prompt_version"],
            registry=r,
        )

    def observe_prediction(self, prediction: Prediction, role: str) -> None:
        self.predictions.labels(role).inc()
        if prediction.steered:
            self.steered.labels(role).inc()
        if not prediction.llm_called:
            return
        self.llm_calls.inc()
        # the spend limit is not the LLM's fault
        if prediction.llm_failure and prediction.llm_failure != LLMFailure.BUDGET:
            self.llm_failures.labels(prediction.llm_failure).inc()
        if prediction.fallback:
            self.fallbacks.labels(prediction.llm_failure or LLMFailure.ERROR).inc()
        if prediction.cache_hit:
            self.llm_cache_hits.inc()
        elif not prediction.fallback:
            self.llm_seconds.observe(prediction.llm_latency_ms / 1000)
        self.llm_tokens.inc(prediction.llm_tokens)
        self.llm_cost.inc(prediction.llm_cost_usd)
