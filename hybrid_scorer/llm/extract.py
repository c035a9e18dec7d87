"""Batch extraction over many posts: progress bar, concurrency for remote backends, resumable, loud.

The cache is the checkpoint: every finished post is written as soon as it is done, so an interrupted
run loses at most the posts in flight and a rerun sends requests only for posts not yet done (failures
are never cached). A run whose failure share passes a threshold is a failed run, not an empty table."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hybrid_scorer.config import DEFAULT_CONCURRENCY
from hybrid_scorer.errors import HybridScorerError
from hybrid_scorer.llm.client import AssessmentResult, EmbeddingResult, LLMClient
from hybrid_scorer.llm.prompts import PostText
from hybrid_scorer.llm.schema import RATING_FIELDS, Answer, question_columns, question_fields
from hybrid_scorer.llm.usage import LLMFailure, LLMOutput, Usage, cost_usd

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_MAX_FAILURE_RATE = 0.05
CALL_LABELS = {LLMOutput.ASSESSMENT: "assessments", LLMOutput.EMBEDDING: "embeddings"}
FIXES = {
    LLMFailure.ERROR: "the endpoint rejected the request (4xx): check the model name, the API key and the response"
    " format",
    LLMFailure.TIMEOUT: "calls timed out: raise HYBRID_SCORER_LLM_TIMEOUT_S or lower --concurrency",
    LLMFailure.TRANSIENT: "the endpoint kept failing or rate-limiting after retries: rerun later (only failed posts are"
    " sent again) or lower --concurrency",
    LLMFailure.VALIDATION: "the model's replies do not match the schema even after a re-ask: use a larger model",
}


class ExtractionFailedError(HybridScorerError, ValueError):
    """Too many posts without LLM features: fitting on them would learn from missing values."""


def post_texts(posts: pd.DataFrame) -> list[PostText]:
    """What the LLM reads: cleaned title and body with their case (never the lowercased TF-IDF text)."""
    return [
        PostText(p, t, b) for p, t, b in zip(posts["post_id"], posts["title_clean"], posts["body_clean"], strict=True)
    ]


def assessment_row(result: AssessmentResult, questions: Sequence[str] = ()) -> dict[str, object]:
    """One table row: ratings and yes/no answers as numbers (NaN on failure), their expectations (for a
    question: P(yes)), failure kind and provenance. Question columns are `q_<name>`."""
    row: dict[str, object] = {"post_id": result.post_id, **result.provenance.model_dump()}
    assessment = result.assessment
    row["topic"] = assessment.topic.value if assessment else None
    for name in RATING_FIELDS:
        row[name] = float(getattr(assessment, name)) if assessment else np.nan
        row[f"{name}_expected"] = result.expected.get(name, np.nan) if assessment else np.nan
    for name in questions:
        answer, p_yes = question_columns(name)
        row[answer] = float(getattr(assessment, name) == Answer.YES) if assessment else np.nan
        row[p_yes] = result.expected.get(name, np.nan) if assessment else np.nan
    row["failure"] = result.usage.failure
    row["cache_hit"] = result.usage.cache_hit
    return row


@dataclass
class Extraction:
    """Per post: its assessment row and/or embedding; every call's result, failures included."""

    assessments: pd.DataFrame | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    results: list[AssessmentResult | EmbeddingResult] = field(default_factory=list)
    left: list[PostText] = field(default_factory=list)  # not sent: they would have passed the cost cap

    def failure_summary(self, max_failure_rate: float, labels: dict[str, str] | None = None) -> str | None:
        """One line per call kind whose failure share exceeds the threshold: counts by failure kind, the
        first error and what to fix. None when the run did its job."""
        problems = []
        for kind, label in (labels or CALL_LABELS).items():
            calls = [r for r in self.results if r.usage.kind == kind]
            failed = [r for r in calls if r.usage.failure]
            if calls and len(failed) / len(calls) > max_failure_rate:
                by_kind = Counter(r.usage.failure or LLMFailure.ERROR for r in failed)
                first = failed[0]
                fix = FIXES.get(by_kind.most_common(1)[0][0], "see the first error")
                problems.append(
                    f"{len(failed)}/{len(calls)} {label} failed ({', '.join(f'{k}: {n}' for k, n in by_kind.items())})"
                    f" > {max_failure_rate:.0%} allowed; first error (post {first.post_id}): {first.error}; fix: {fix}"
                )
        return "\n".join(problems) or None

    def check(self, max_failure_rate: float, labels: dict[str, str] | None = None) -> None:
        """Raise ExtractionFailedError when too many posts have no LLM features."""
        summary = self.failure_summary(max_failure_rate, labels)
        if summary:
            raise ExtractionFailedError(f"LLM extraction failed: {summary}")


def _map(fn: Callable[[PostText], T], items: list[PostText], concurrency: int, desc: str, progress: bool) -> list[T]:
    bar = tqdm(total=len(items), desc=desc, unit="post", disable=not progress)
    try:
        if concurrency <= 1:
            results = []
            for item in items:
                results.append(fn(item))
                bar.update()
            return results
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(fn, item) for item in items]
            out = []
            for future in futures:
                out.append(future.result())
                bar.update()
            return out
    finally:
        bar.close()


def missing(client: LLMClient, texts: list[PostText], assessments: bool, embeddings: bool) -> list[PostText]:
    """The posts whose wanted entries are not in the client's store (computing keys loads no model): what
    a run sends, and what a rerun after it would send again."""
    store = client.cache
    assert store is not None
    return [
        t
        for t in texts
        if (assessments and client.assessment_key(t) not in store)
        or (embeddings and client.embedding_key(t) not in store)
    ]


class CostCap:
    """Stop before the run's LLM spend would pass `max_usd`. A post is sent only if what was spent, plus
    what posts in flight are expected to cost, plus this post's expected cost stays within the cap; the
    expectation is the mean cost of this run's posts so far, or before the first one an estimate from
    the prompt's length (~4 characters per token, 64 completion tokens) at the ledger's prices."""

    def __init__(self, client: LLMClient, max_usd: float, assessments: bool, embeddings: bool) -> None:
        self.client, self.max_usd = client, max_usd
        wanted = {LLMOutput.ASSESSMENT: assessments, LLMOutput.EMBEDDING: embeddings}
        self.kinds = [kind for kind, asked in wanted.items() if asked]
        self.spent = self.reserved = 0.0
        self.done = 0
        self._lock = threading.Lock()

    def _expected(self, post: PostText) -> float:
        if self.done:
            return self.spent / self.done
        prices = self.client.ledger.prices
        chars = {
            LLMOutput.ASSESSMENT: sum(len(m["content"]) for m in self.client.prompt.messages(post)),
            LLMOutput.EMBEDDING: len(post.embedding_input()),
        }
        completion = {LLMOutput.ASSESSMENT: 64, LLMOutput.EMBEDDING: 0}
        return sum(
            (chars[k] / 4 * prices.get(k, (0.0, 0.0))[0] + completion[k] * prices.get(k, (0.0, 0.0))[1]) / 1e6
            for k in self.kinds
        )

    def reserve(self, post: PostText) -> float | None:
        """The post's expected cost, now counted as in flight; None when sending it could pass the cap."""
        with self._lock:
            expected = self._expected(post)
            if self.spent + self.reserved + expected > self.max_usd:
                return None
            self.reserved += expected
            return expected

    def settle(self, reserved: float, usages: list[Usage]) -> None:
        with self._lock:
            self.reserved -= reserved
            self.spent += cost_usd([u for u in usages if not u.cache_hit], self.client.ledger.prices)
            self.done += 1


def extract(
    client: LLMClient,
    posts: pd.DataFrame | Iterable[PostText],
    assessments: bool = True,
    embeddings: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    max_cost_usd: float | None = None,
) -> Extraction:
    """Assess and/or embed every post, `concurrency` calls at once where the backend serves that many
    (an in-process model serves one). With `max_cost_usd`, posts whose answers are not cached are sent
    only while the run's spend stays within it (CostCap); the others are left (`Extraction.left`) for a
    rerun, which finds what this one did in the cache."""
    items = post_texts(posts) if isinstance(posts, pd.DataFrame) else list(posts)
    workers = min(concurrency, client.backend.max_concurrency or concurrency)
    cap = CostCap(client, max_cost_usd, assessments, embeddings) if max_cost_usd is not None else None
    to_send = {t.post_id for t in missing(client, items, assessments, embeddings)} if cap else set()

    def one(post: PostText) -> list[AssessmentResult | EmbeddingResult] | None:
        reserved = cap.reserve(post) if cap is not None and post.post_id in to_send else 0.0
        if reserved is None:
            return None  # left for a rerun: it would pass the cost cap
        # assessment first: a backend that embeds in the same pass caches the embedding on the way
        results: list[AssessmentResult | EmbeddingResult] = [client.assess(post)] if assessments else []
        results += [client.embed(post)] if embeddings else []
        if cap is not None and post.post_id in to_send:
            cap.settle(reserved, [r.usage for r in results])
        return results

    out = Extraction()
    try:
        done = _map(one, items, workers, "posts", progress)
    finally:  # interrupted or not, what finished is kept
        if client.cache is not None:
            client.cache.flush()
    out.left = [post for post, results in zip(items, done, strict=True) if results is None]
    out.results = [r for results in done if results is not None for r in results]
    assessed = [r for r in out.results if isinstance(r, AssessmentResult)]
    if assessments:
        questions = question_fields(client.prompt.response_model)
        out.assessments = pd.DataFrame([assessment_row(r, questions) for r in assessed])
    if embeddings:
        out.embeddings = {
            r.post_id: r.vector for r in out.results if isinstance(r, EmbeddingResult) and r.vector is not None
        }
    return out
