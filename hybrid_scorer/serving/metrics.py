"""Prometheus metrics of the service, named by Prometheus conventions (base units, `_total` counters,
low-cardinality labels). One registry per app, so tests and several apps in one process never collide.

The service runs one worker process (the embedded LLM lives in it; a second worker would load a second
copy), so prometheus-client's single-process registry is exact; scale out with replicas, not workers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hybrid_scorer.serving.schemas import Prediction

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.llm_tokens = Counter("hybrid_scorer_llm_tokens", "LLM tokens spent on live calls", registry=r)
        self.llm_cost = Counter("hybrid_scorer_llm_cost_dollars", "Estimated LLM spend (USD)", registry=r)
        self.model_info = Gauge(
            "hybrid_scorer_model_info",
            "The served models (value 1)",
            ["role", "version", "llm", "prompt_version"],
            registry=r,
        )

    def observe_prediction(self, prediction: Prediction, role: str) -> None:
        self.predictions.labels(role).inc()
        if not prediction.llm_called:
            return
        if prediction.llm_failure:
            self.llm_failures.labels(prediction.llm_failure).inc()
        if prediction.fallback:
            self.fallbacks.labels(prediction.llm_failure or "error").inc()
        if prediction.cache_hit:
            self.llm_cache_hits.inc()
        elif not prediction.fallback:
            self.llm_seconds.observe(prediction.llm_latency_ms / 1000)
        self.llm_tokens.inc(prediction.llm_tokens)
        self.llm_cost.inc(prediction.llm_cost_usd)
