"""Probability-weighted answers: E[k] = sum k * p(k) over the digits 1-5 for ratings, P(yes) for yes/no
questions, each renormalized over the values the schema allows.

A small model puts most of its mass on one digit for every post, so the argmax is constant; the
expectation keeps the small shifts in mass that do differ between posts."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from hybrid_scorer.llm.schema import RATING_FIELDS, RATING_SCALE

DIGITS = tuple(str(k) for k in RATING_SCALE)
_RATING_KEY = re.compile(r'"(\w+)"\s*:\s*$')
_ANSWER_KEY = re.compile(r'"(\w+)"\s*:\s*"$')


def _renormalized(logprob_by_value: Mapping[str, float], allowed: tuple[str, ...]) -> dict[str, float]:
    """Probabilities of the allowed values present (tokens stripped, lower-cased), summing to 1."""
    present = {t.strip().lower(): lp for t, lp in logprob_by_value.items() if t.strip().lower() in allowed}
    if not present:
        return {}
    top = max(present.values())
    weights = {v: math.exp(lp - top) for v, lp in present.items()}
    total = sum(weights.values())
    return {v: w / total for v, w in weights.items()}


def digit_expectation(logprob_by_token: Mapping[str, float]) -> float | None:
    """Expectation over the digits present in a token -> logprob map (None when no digit is there)."""
    probabilities = _renormalized(logprob_by_token, DIGITS)
    return sum(int(d) * p for d, p in probabilities.items()) if probabilities else None


def yes_probability(logprob_by_token: Mapping[str, float]) -> float | None:
    """P(yes) renormalized over the answers present ("yes", "no"); None when neither is there."""
    probabilities = _renormalized(logprob_by_token, ("yes", "no"))
    return probabilities.get("yes", 0.0) if probabilities else None


def expectations_from_token_logprobs(tokens: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, float]:
    """Walk generated tokens (text, top-logprobs); at the digit right after `"<rating>":` read the
    expectation, at the "yes"/"no" right after `"<question>": "` read P(yes). A field absent from the
    top log-probabilities gets no value (the feature then falls back to the answer itself).

    Works for any backend that returns per-token top log-probabilities (OpenAI-style `logprobs.content`)."""
    text = ""
    found: dict[str, float] = {}
    for token, top in tokens:
        word, value, match = token.strip(), None, None
        if word in DIGITS and (match := _RATING_KEY.search(text)) and match.group(1) in RATING_FIELDS:
            value = digit_expectation(top) if top else None
        elif word.lower() in ("yes", "no") and (match := _ANSWER_KEY.search(text)):
            value = yes_probability(top) if top else None
        if value is not None and match is not None and match.group(1) not in found:
            found[match.group(1)] = value
        text += token
    return found
