"""The usage ledger: every LLM call's tokens, milliseconds, attempts, cache hit and failure."""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydantic import BaseModel


class LLMOutput(StrEnum):
    """The two kinds of LLM call, and what a feature group can need from the LLM for each post."""

    ASSESSMENT = "assess"
    EMBEDDING = "embed"


class LLMFailure(StrEnum):
    """Why an LLM answer is missing, one name each: the ledger counts them, a prediction reports them."""

    TIMEOUT = "timeout"  # the call, or the service's latency budget, ran out
    VALIDATION = "validation"  # replies off the schema even after a re-ask
    TRANSIENT = "transient"  # 5xx, 429 or a lost connection, retries exhausted
    ERROR = "error"  # not worth retrying: a 4xx, a bug
    BUSY = "busy"  # serving: the LLM queue was full
    BUDGET = "budget"  # serving: the spend limit was reached


class Usage(BaseModel):
    """One logical call (all its retries and re-asks added up)."""

    kind: LLMOutput = LLMOutput.ASSESSMENT
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 0
    cache_hit: bool = False
    failure: LLMFailure | None = None


class LedgerSummary(BaseModel):
    backend: str
    calls: int
    cache_hits: int
    hit_rate: float
    failures_by_kind: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    llm_seconds: float
    p50_latency_ms: float
    p95_latency_ms: float
    tokens_per_second: float
    estimated_cost_usd: float
    # What producing every result cost when it was computed, cached or not (from cache provenance):
    # the cost of the features themselves, stable across cached reruns.
    produced_tokens: int
    produced_llm_seconds: float
    produced_cost_usd: float
    produced_cost_by_kind_usd: dict[str, float]  # chat (assess) and embedding calls, priced apart
    produced_p50_latency_ms: float
    produced_p95_latency_ms: float

    def render(self) -> str:
        failures = ", ".join(f"{k}: {v}" for k, v in self.failures_by_kind.items()) or "none"
        return (
            f"LLM usage ({self.backend}): {self.calls} calls, {self.cache_hits} cache hits ({self.hit_rate:.1%}),"
            f" failures: {failures}\n"
            + (
                f"  tokens: {self.prompt_tokens} prompt + {self.completion_tokens} completion;"
                f" {self.llm_seconds:.1f} s in the LLM, {self.tokens_per_second:.0f} tokens/s\n"
                f"  latency of uncached calls: p50 {self.p50_latency_ms:.0f} ms, p95 {self.p95_latency_ms:.0f} ms;"
                f" estimated cost ${self.estimated_cost_usd:.4f}\n"
                if self.calls > self.cache_hits
                else "  no live LLM call in this run\n"
            )
            + f"  producing all {self.calls} results took {self.produced_tokens} tokens and"
            f" {self.produced_llm_seconds:.1f} s (p50 {self.produced_p50_latency_ms:.0f} ms, p95"
            f" {self.produced_p95_latency_ms:.0f} ms per call; cache provenance), ${self.produced_cost_usd:.4f}"
            + "".join(f", {kind} ${usd:.4f}" for kind, usd in self.produced_cost_by_kind_usd.items())
        )


Price = tuple[float, float]  # USD per million (prompt, completion) tokens


def cost_usd(usages: list[Usage], prices: Mapping[str, Price]) -> float:
    """Dollars for these calls, each priced by its kind (chat `assess` vs `embed`: different models)."""
    total = 0.0
    for u in usages:
        prompt_price, completion_price = prices.get(u.kind, (0.0, 0.0))
        total += u.prompt_tokens * prompt_price + u.completion_tokens * completion_price
    return total / 1e6


class UsageLedger:
    """Thread-safe accumulator; summary() gives run totals and percentiles, save() writes them as JSON."""

    def __init__(self, backend: str, prices: Mapping[str, Price] | None = None, keep: int | None = None) -> None:
        """`keep`: hold only the last `keep` calls (a long-running service; None: every call of a run)."""
        self.backend = backend
        self.prices = dict(prices or {})
        self._records: deque[Usage] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def record(self, usage: Usage) -> None:
        with self._lock:
            self._records.append(usage)

    @property
    def records(self) -> list[Usage]:
        with self._lock:
            return list(self._records)

    def subset(self, kinds: set[str]) -> UsageLedger:
        """A ledger of only these kinds of call (assess, embed)."""
        sub = UsageLedger(self.backend, self.prices)
        for record in self.records:
            if record.kind in kinds:
                sub.record(record)
        return sub

    def summary(self) -> LedgerSummary:
        records = self.records
        live = [r for r in records if not r.cache_hit]
        latencies = np.array([r.latency_ms for r in live]) if live else np.zeros(1)
        produced = np.array([r.latency_ms for r in records]) if records else np.zeros(1)
        prompt = sum(r.prompt_tokens for r in live)
        completion = sum(r.completion_tokens for r in live)
        seconds = float(latencies.sum() / 1000.0) if live else 0.0
        return LedgerSummary(
            backend=self.backend,
            calls=len(records),
            cache_hits=len(records) - len(live),
            hit_rate=(len(records) - len(live)) / len(records) if records else 0.0,
            failures_by_kind=dict(Counter(r.failure for r in records if r.failure)),
            prompt_tokens=prompt,
            completion_tokens=completion,
            llm_seconds=seconds,
            p50_latency_ms=float(np.percentile(latencies, 50)),
            p95_latency_ms=float(np.percentile(latencies, 95)),
            tokens_per_second=(prompt + completion) / seconds if seconds > 0 else 0.0,
            estimated_cost_usd=cost_usd(live, self.prices),
            produced_tokens=sum(r.prompt_tokens + r.completion_tokens for r in records),
            produced_llm_seconds=sum(r.latency_ms for r in records) / 1000.0,
            produced_cost_usd=cost_usd(records, self.prices),
            produced_cost_by_kind_usd={
                kind: cost_usd([r for r in records if r.kind == kind], self.prices)
                for kind in sorted({r.kind for r in records})
            },
            produced_p50_latency_ms=float(np.percentile(produced, 50)),
            produced_p95_latency_ms=float(np.percentile(produced, 95)),
        )

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        by_kind = {kind: self.subset({kind}).summary().model_dump() for kind in sorted({r.kind for r in self.records})}
        path.write_text(json.dumps({"total": self.summary().model_dump(), "by_kind": by_kind}, indent=2))
        return path
