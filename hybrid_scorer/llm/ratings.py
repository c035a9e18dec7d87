"""Probability-weighted ratings: E[k] = sum k * p(k) over the digits 1-5, renormalized over them.

A small model puts most of its mass on one digit for every post, so the argmax is constant; the
expectation keeps the small shifts in mass that do differ between posts."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from hybrid_scorer.llm.schema import RATING_FIELDS

DIGITS = ("1", "2", "3", "4", "5")


def digit_expectation(logprob_by_token: Mapping[str, float]) -> float | None:
    """Expectation over the digits present in a token -> logprob map (None when no digit is there)."""
    present = {int(t.strip()): lp for t, lp in logprob_by_token.items() if t.strip() in DIGITS}
    if not present:
        return None
    top = max(present.values())
    weights = {k: math.exp(lp - top) for k, lp in present.items()}
    return sum(k * w for k, w in weights.items()) / sum(weights.values())


def expectations_from_token_logprobs(tokens: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, float]:
    """Walk generated tokens (text, top-logprobs); at the digit right after `"<field>":` read the expectation.

    Works for any backend that returns per-token top log-probabilities (OpenAI-style `logprobs.content`)."""
    text = ""
    found: dict[str, float] = {}
    for token, top in tokens:
        if token.strip() in DIGITS:
            match = re.search(r'"(\w+)"\s*:\s*$', text)
            if match and match.group(1) in RATING_FIELDS and match.group(1) not in found:
                value = digit_expectation(top) if top else None
                if value is not None:
                    found[match.group(1)] = value
        text += token
    return found
