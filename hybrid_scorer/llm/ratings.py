"""Probability-weighted answers: E[k] = sum k * p(k) over the digits 1-5 for ratings, P(yes) for yes/no
questions, each renormalized over the values the schema allows.

A small model puts most of its mass on one digit for every post, so the argmax is constant; the
expectation keeps the small shifts in mass that do differ between posts."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from hybrid_scorer.llm.schema import RATING_FIELDS

DIGITS = ("1", "2", "3", "4", "5")
_RATING_KEY = re.compile(r'"(\w+)"\s*:\s*$')
_ANSWER_KEY = re.compile(r'"(\w+)"\s*:\s*"$')


def digit_expectation(logprob_by_token: Mapping[str, float]) -> float | None:
    """Expectation over the digits present in a token -> logprob map (None when no digit is there)."""
    present = {int(t.strip()): lp for t, lp in logprob_by_token.items() if t.strip() in DIGITS}
    if not present:
        return None
    top = max(present.values())
    weights = {k: math.exp(lp - top) for k, lp in present.items()}
    return sum(k * w for k, w in weights.items()) / sum(weights.values())


def yes_probability(logprob_by_token: Mapping[str, float]) -> float | None:
    """P(yes) renormalized over the answers present ("yes", "no"); None when neither is there."""
    present = {t.strip().lower(): lp for t, lp in logprob_by_token.items() if t.strip().lower() in ("yes", "no")}
    if not present:
        return None
    top = max(present.values())
    weights = {t: math.exp(lp - top) for t, lp in present.items()}
    return weights.get("yes", 0.0) / sum(weights.values())


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
