"""A prediction in a person's words: what `hybrid-scorer predict` prints unless asked for JSON."""

from __future__ import annotations

import math

from hybrid_scorer.intervals import LEVELS, interval_field, level_percent
from hybrid_scorer.llm.usage import LLMFailure
from hybrid_scorer.serving.schemas import Driver, Prediction

# why the LLM did not answer, for a person (the page's page.js says the same)
FAILURE_WORDS = {
    LLMFailure.TIMEOUT: "it took longer than this service waits",
    LLMFailure.VALIDATION: "its answer did not have the expected form",
    LLMFailure.TRANSIENT: "it could not be reached, even after retries",
    LLMFailure.ERROR: "it refused the request",
    LLMFailure.BUSY: "it was busy with other posts",
    LLMFailure.BUDGET: "this service's LLM spending limit was reached",
}


def percent(probability: float) -> str:
    """A probability that is neither 0 nor 1 is never shown as 0% or 100%."""
    if 0 < probability < 0.01:
        return "under 1%"
    if 0.99 < probability < 1:
        return "over 99%"
    return f"{probability:.0%}"


def factor(effect_log: float) -> str:
    """A share of the log score as what it does to the score: "x1.34" raises it, "/1.20" lowers it; a
    share too small to show in two decimals is "barely", never "x1.00"."""
    if abs(effect_log) < 0.005:
        return "barely"
    return f"{'x' if effect_log > 0 else '/'}{math.exp(abs(effect_log)):.2f}"


def _drivers(drivers: list[Driver], most: int = 3) -> str:
    said = ", ".join(f"{d.reads_as} ({factor(d.effect_log)})" for d in drivers[:most])
    return f"What moved it most: {said}."


def _points(score: float) -> str:
    return f"{score:,.0f}"


def _llm(p: Prediction) -> str:
    if p.fallback:
        why = FAILURE_WORDS[p.llm_failure] if p.llm_failure else "it failed"
        return f"The LLM did not answer ({why}): the content model stood in."
    if p.cache_hit:
        return "The LLM's reading of this post came from the cache."
    if p.llm_called:
        return f"The LLM read the post in {p.llm_latency_ms:,.0f} ms ({p.llm_tokens} tokens)."
    return "Scored by the content model (no LLM in this model)."


def describe(p: Prediction) -> str:
    lines = [f"Predicted score: {_points(p.score)}"]
    ranges = [(level, getattr(p, interval_field(level))) for level in LEVELS]
    if all(bounds for _, bounds in ranges):
        said = ", ".join(f"{_points(lo)} and {_points(hi)} ({level_percent(level)}%)" for level, (lo, hi) in ranges)
        lines.append(f"Likely between {said}.")
    if p.p_top is not None:
        lines.append(f"Chance of reaching 1,000 or more: {percent(p.p_top)}.")
    if p.drivers:
        lines.append(_drivers(p.drivers))
    lines.append(_llm(p))
    if p.steering is not None:
        lines.append(
            f'Scored without one sentence of the {p.steering.place}, "{p.steering.text}": on its own it raised the'
            f" score {math.exp(p.steering.effect_log):.1f}x, more than one sentence may."
        )
    return "\n".join(lines)
