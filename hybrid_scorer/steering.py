"""One sentence that decides a score: flag a post whose prediction rests on a single sentence, and score it
without that sentence.

The embedded LLM's embedding is pooled over the title (llm/backends/embedded.py), so no text in the body
reaches the LLM's hidden states. The words and the length of a post still reach the content features
(TF-IDF, text statistics), and the whole post reaches the 1-5 ratings. This check removes each part of
the post in turn (a sentence of the title or body; long posts in at most MAX_PARTS runs of sentences) and
predicts again by the row path with the post's LLM outputs held as they are: removing body text does not
change the title's embedding, and recomputing it for a title sentence would take an LLM call per
sentence. A part whose removal lowers the prediction by more than the threshold (log1p units) is one
sentence doing what the rest of the post does not: the post is flagged as steered and scored without it.

The threshold is a limit on what one sentence may do, set by how rarely it flags honest posts (reports/
bench/steering.txt), never by the attacks it is measured on (bench/injection.py)."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import BaseModel

from hybrid_scorer.data import clean_fields, clean_text
from hybrid_scorer.features.base import PostRow
from hybrid_scorer.model import HybridScorer

MAX_PARTS = 24  # a longer post is checked in this many runs of consecutive sentences: every sentence is in one
_SENTENCE = re.compile(r"[^.!?\n]*[.!?]+[\"')\]]*|[^.!?\n]+")


class Steering(BaseModel):
    """The part of the post that moved its prediction most, when it moved it past the threshold."""

    place: Literal["title", "body"]
    text: str
    effect_log: float  # log1p(score) with the part minus without it


def parts(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text` (merged into at most MAX_PARTS runs)."""
    spans = [m.span() for m in _SENTENCE.finditer(text) if m.group().strip()]
    if len(spans) <= MAX_PARTS:
        return spans
    bounds = np.linspace(0, len(spans), MAX_PARTS + 1).round().astype(int)
    return [(spans[a][0], spans[b - 1][1]) for a, b in itertools.pairwise(bounds)]


def _candidates(row: PostRow) -> list[tuple[Literal["title", "body"], str, PostRow]]:
    """Each part of the post with the row that lacks it (a title's only sentence stays: a post has one)."""
    out: list[tuple[Literal["title", "body"], str, PostRow]] = []
    title_parts = parts(row.title_clean)
    for start, stop in title_parts if len(title_parts) > 1 else []:
        title = clean_text(row.title_clean[:start] + row.title_clean[stop:])
        out.append(("title", row.title_clean[start:stop].strip(), replace(row, title_clean=title)))
    for start, stop in parts(row.body):
        body = row.body[:start] + row.body[stop:]
        _, body_clean, raw = clean_fields(row.title_clean, body)
        out.append(("body", row.body[start:stop].strip(), replace(row, body_clean=body_clean, body=raw)))
    return out


def check(model: HybridScorer, row: PostRow, point: float, threshold: float) -> tuple[Steering | None, PostRow]:
    """(the steering found, the row to score): the row without the part whose removal lowers the prediction
    most, when that exceeds `threshold`; otherwise (None, the row itself). `point` is the row's own
    log prediction."""
    candidates = _candidates(row)
    if not candidates:
        return None, row
    effects = point - model.predict_log_variants(row, [without for _, _, without in candidates])
    top = int(np.argmax(effects))  # the first of equal effects, as a scan in order would keep
    if effects[top] <= threshold:
        return None, row
    place, text, without = candidates[top]
    return Steering(place=place, text=text[:300], effect_log=float(effects[top])), without
