"""Glue shared by the CLI, the ablation, training and serving: data + LLM columns for a set of feature groups.

`llm_columns` is the one path from posts to the `llm_*` columns the model reads: batch commands call it
for thousands of posts with a failure threshold, serving for one post with a latency budget."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import pandas as pd

from hybrid_scorer.config import Settings
from hybrid_scorer.data import DataReport
from hybrid_scorer.features.llm import attach_llm_columns
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.extract import DEFAULT_MAX_FAILURE_RATE, Extraction, extract
from hybrid_scorer.llm.factory import make_client

ASSESSMENT_GROUPS = ("llm_ratings", "llm_questions")
EMBEDDING_GROUPS = ("llm_embedding", "llm_stack")


def call_labels(groups: Sequence[str]) -> dict[str, str]:
    """What each kind of LLM call feeds among these groups, for failure messages."""

    def of(calls: str, owners: tuple[str, ...]) -> str:
        used = [f"'{g}'" for g in owners if g in groups]
        return f"the {calls} of feature group{'s' if len(used) > 1 else ''} {' and '.join(used)}"

    return {"assess": of("assessments", ASSESSMENT_GROUPS), "embed": of("embeddings", EMBEDDING_GROUPS)}


def needs_llm(groups: Sequence[str]) -> tuple[bool, bool]:
    """(needs assessments, needs embeddings) for these feature groups."""
    return any(g in groups for g in ASSESSMENT_GROUPS), any(g in groups for g in EMBEDDING_GROUPS)


@dataclass
class LLMColumns:
    posts: pd.DataFrame  # the posts with the `llm_*` columns the groups read
    extraction: Extraction  # every call's result and usage, failures included


def llm_columns(
    posts: pd.DataFrame,
    groups: Sequence[str],
    client: LLMClient | None,
    concurrency: int = 4,
    progress: bool = True,
    max_failure_rate: float | None = DEFAULT_MAX_FAILURE_RATE,
    timeout_s: float | None = None,
    executor: Executor | None = None,
) -> LLMColumns:
    """Posts plus the LLM columns these groups read, extracted through the cache.

    With `max_failure_rate`, too many posts without LLM features raise ExtractionFailedError (naming the
    failure kinds) instead of handing NaN columns to a fit. With `timeout_s` (and the `executor` the work
    runs on), waiting longer raises TimeoutError; the call itself finishes in the background and its
    result still reaches the cache."""
    want_ratings, want_embeddings = needs_llm(groups)
    if not (want_ratings or want_embeddings):
        return LLMColumns(posts, Extraction())
    if client is None:
        raise ValueError(f"feature groups {list(groups)} need an LLM: pass --llm SPEC")

    def run() -> Extraction:
        return extract(client, posts, want_ratings, want_embeddings, concurrency, progress)

    if timeout_s is None:
        extraction = run()
    else:
        if executor is None:
            raise ValueError("a timeout needs the executor the LLM work runs on")
        future = executor.submit(run)
        try:
            extraction = future.result(timeout=timeout_s)
        except FutureTimeout as exc:
            future.cancel()  # still queued: dropped; already running: it finishes and fills the cache
            raise TimeoutError(f"LLM exceeded the {timeout_s * 1000:.0f} ms budget") from exc
    if max_failure_rate is not None:
        extraction.check(max_failure_rate, call_labels(groups))
    enriched = attach_llm_columns(posts, extraction.assessments, extraction.embeddings if want_embeddings else None)
    return LLMColumns(enriched, extraction)


def client_for(spec: str | None, settings: Settings) -> LLMClient | None:
    return None if spec in (None, "", "none") else make_client(spec, settings)


@dataclass
class Job:
    """What a command works on: the prepared posts, how they were loaded, settings and the LLM spec."""

    posts: pd.DataFrame
    report: DataReport
    settings: Settings
    llm: str | None
    progress: bool = True
    concurrency: int = 4
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE

    def client(self) -> LLMClient | None:
        return client_for(self.llm, self.settings)

    def enriched(self, groups: Sequence[str], client: LLMClient | None) -> pd.DataFrame:
        """The job's posts with the LLM columns these groups need; refuses past the failure threshold."""
        return llm_columns(
            self.posts, groups, client, self.concurrency, self.progress, max_failure_rate=self.max_failure_rate
        ).posts
