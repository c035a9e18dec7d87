"""A prediction in a person's words: what `hybrid-scorer predict` prints unless asked for JSON. The words
for a factor, a probability and a failure come in the answer itself (schemas.py), as the page gets them."""

from __future__ import annotations

import math

from hybrid_scorer.features.meta import RARE_FLAIR
from hybrid_scorer.intervals import LEVELS, interval_field, level_percent
from hybrid_scorer.serving.schemas import Driver, Prediction


def _drivers(drivers: list[Driver], most: int = 3) -> str:
    said = ", ".join(f"{d.reads_as} ({d.factor})" for d in drivers[:most])
    return f"What moved it most: {said}."


def _points(score: float) -> str:
    return f"{score:,.0f}"


def _llm(p: Prediction) -> str:
    if p.fallback:
        return f"The LLM did not answer ({p.llm_failure_words or 'it failed'}): the content model stood in."
    if p.cache_hit:
        return "The LLM's reading of this post came from the cache."
    if p.llm_called:
        return f"The LLM read the post in {p.llm_latency_ms:,.0f} ms ({p.llm_tokens} tokens)."
    return "Scored by the content model: no LLM was served (`--llm none`, or a model trained without one)."


def describe(p: Prediction) -> str:
    lines = [f"Predicted score: {_points(p.score)}"]
    ranges = [(level, getattr(p, interval_field(level))) for level in LEVELS]
    if all(bounds for _, bounds in ranges):
        said = ", ".join(f"{_points(lo)} and {_points(hi)} ({level_percent(level)}%)" for level, (lo, hi) in ranges)
        lines.append(f"Likely between {said}.")
    if p.p_top_words is not None:
        lines.append(f"Chance of reaching 1,000 or more: {p.p_top_words}.")
    if p.drivers:
        lines.append(_drivers(p.drivers))
    lines.append(_llm(p))
    if p.flair_read_as == RARE_FLAIR:
        lines.append("The flair is not one the model learned, so it was scored as 'other' (GET /v1/flairs lists them).")
    if p.steering is not None:
        lines.append(
            f'Part of the {p.steering.place}, "{p.steering.text}", raised the score'
            f" {math.exp(p.steering.effect_log):.1f}x on its own; one sentence (or one block of them at either"
            " end of the body) may add at most"
            f" {math.exp(p.steering.limit_log):.1f}x, so the score counts that much of it."
        )
    return "\n".join(lines)
