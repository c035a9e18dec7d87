"""No one sentence may decide a score: a post's prediction is at most the prediction of the same post
without any one of its parts, plus a limit (log1p units; log 2 by default, Settings.steering_limit_log).

The check removes each part of the post in turn (a sentence of the title or body; long posts in at most
MAX_PARTS runs of sentences) and predicts again by the row path. When the part whose removal lowers the
prediction most lowers it by more than the limit, the post is flagged as steered and its prediction is
that of the post without the part, raised by the limit. An author who adds one sentence to a post, in any
words, so gets at most the limit above the post without it: the post without the sentence is one of the
variants, whatever the sentence says. An honest post loses only what one of its parts adds beyond the
limit, not the part's whole effect. With Settings.steering_runs (served) the check also removes each run
of two or more parts at the start or end of the body, so a block added there in any number of sentences
is bounded as one sentence is (a block in the middle of the body is bounded per sentence only); a part
or run left out takes the whitespace after it along, so a paragraph of its own leaves none behind.

What the LLM read stays as it was (`reads` aside): the LLM reads the title alone (the embedding is pooled
over the title's tokens, llm/backends/embedded.py, and the default prompt shows it no body), so body text
reaches no LLM output, and re-reading the post once per sentence would multiply the LLM's cost. The bound
is so exact for a body sentence, and partial for a title sentence, which keeps its pull through the
title's embedding and ratings. Reading each title without one of its sentences again (`reads`,
`title_variants`) would close that; scripts/llm_ab.py measured it and
serving does not do it: it limited 14.4% of honest posts, cost -0.012 Spearman and half again the LLM
calls (reports/ab_defence.md), while text glued into the title's own sentence is no part to remove.

The limit is a promise about what one sentence may do, set before any attack was measured (bench/
injection.py measures how far it holds); what it costs honest posts is measured in reports/ab_defence.md
and, with the runs, reports/ab_blocks.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from hybrid_scorer.data import clean_decoded, clean_text
from hybrid_scorer.features.base import PostRow
from hybrid_scorer.model import P_TOP, HybridScorer, Scored
from hybrid_scorer.sentences import parts


class Steering(BaseModel):
    """The part of the post that moved its prediction most, when it moved it past the limit."""

    place: Literal["title", "body"]
    text: str
    effect_log: float  # log1p(score) with the part minus without it
    limit_log: float  # the most one part may add: the prediction is the post's without the part plus this


@dataclass(frozen=True)
class Reads:
    """LLM outputs of the check's variants, read apart from the post's (serving reads none: each variant
    keeps the post's outputs): `titles` by the title without one of its sentences (title_variants),
    `bodies` for the post without each body part, in the order of parts(row.body)."""

    titles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bodies: Sequence[Mapping[str, Any]] = ()


def _title_cuts(title: str) -> list[tuple[str, str]]:
    """(each sentence of a title of more than one, the title without it); a title's only sentence stays."""
    spans = parts(title)
    return [(title[a:b].strip(), clean_text(title[:a] + title[b:])) for a, b in spans] if len(spans) > 1 else []


def title_variants(row: PostRow) -> list[str]:
    """The titles the check scores, each without one of its sentences: the texts to read again for `reads`."""
    return [title for _, title in _title_cuts(row.title_clean)]


def _without(text: str, start: int, stop: int) -> str:
    """`text` without text[start:stop], as it reads without the part: the whitespace that separated the
    part from what came before stays and the one after it goes, so a part written as a paragraph of its
    own leaves no empty paragraph behind (the raw body's paragraphs are a feature: a variant that kept
    them would still count the part)."""
    left, right = text[:start], text[stop:]
    if not right.strip():
        return left.rstrip()
    if not left.strip():
        return right.lstrip()
    return left + right.lstrip() if left != left.rstrip() else left + right


def candidates(
    row: PostRow, reads: Reads | None = None, *, runs: bool
) -> list[tuple[Literal["title", "body"], str, PostRow]]:
    """Each part of the post with the row that lacks it, carrying its own LLM outputs where `reads` has
    them and the post's otherwise; with `runs`, also each run of two or more parts at the start or the end
    of the body (a block added there, in any number of sentences), the body never removed whole."""
    reads = reads or Reads()
    out: list[tuple[Literal["title", "body"], str, PostRow]] = []
    for text, title in _title_cuts(row.title_clean):
        out.append(("title", text, replace(row, title_clean=title, llm=reads.titles.get(title, row.llm))))
    spans = parts(row.body)
    cuts: list[tuple[int | None, int, int]] = [(k, start, stop) for k, (start, stop) in enumerate(spans)]
    if runs:
        n = len(spans)
        cuts += [(None, spans[0][0], spans[k - 1][1]) for k in range(2, n)]  # the first k parts
        cuts += [(None, spans[n - k][0], spans[-1][1]) for k in range(2, n)]  # the last k parts
    for k, start, stop in cuts:
        body = _without(row.body, start, stop)  # decoded and cut at its edits already, as the post's
        llm = reads.bodies[k] if reads.bodies and k is not None else row.llm
        out.append(
            ("body", row.body[start:stop].strip(), replace(row, body_clean=clean_decoded(body), body=body, llm=llm))
        )
    return out


def check(
    model: HybridScorer, row: PostRow, own: Scored, limit: float, reads: Reads | None = None, *, runs: bool
) -> tuple[Steering | None, PostRow, np.ndarray | None]:
    """(the steering found, the row to score, its booster row): the row without the part whose removal
    lowers the prediction most, when that exceeds `limit`; otherwise (None, the row itself, None). `own` is
    the row's own score (its log prediction, and its booster row: the blocks no part changes are read from
    it); `reads` the LLM outputs of variants read apart; `runs`: runs of parts at the body's ends too."""
    removals = candidates(row, reads, runs=runs)
    if not removals:
        return None, row, None
    base = own.features[0] if isinstance(own.features, np.ndarray) else None
    variants = model.score_variants(row, [without for _, _, without in removals], base)
    effects = float(own.log[0]) - variants.log
    top = int(np.argmax(effects))  # the first of equal effects, as a scan in order would keep
    if effects[top] <= limit:
        return None, row, None
    place, text, without = removals[top]
    steering = Steering(place=place, text=text[:300], effect_log=float(effects[top]), limit_log=limit)
    assert isinstance(variants.features, np.ndarray)
    return steering, without, variants.features[top]


def limited(
    model: HybridScorer, row: PostRow, limit: float | None, reads: Reads | None = None, *, runs: bool
) -> tuple[float, dict[str, float], Steering | None, PostRow]:
    """The row's (log prediction, heads) under the limit (None: no check), with the steering found and the
    row scored: a steered post's point and quantile heads are those of the post without the part plus the
    limit (its interval moves with its point), its p_top that of the post without the part."""
    own = model.score(row)
    point, heads = own.post()
    if limit is None:
        return point, heads, None, row
    steering, without, features = check(model, row, own, limit, reads, runs=runs)
    if steering is None:
        return point, heads, None, row
    point, heads = model.score(without, features=features).post()
    raised = {head: value if head == P_TOP else value + limit for head, value in heads.items()}
    return point + limit, raised, steering, without
