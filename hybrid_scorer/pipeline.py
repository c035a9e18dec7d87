"""Glue shared by the CLI, the ablation, training and serving: data + LLM outputs for a set of feature groups.

`llm_columns` is the batch path from posts to the `llm_*` columns the model reads (thousands of posts,
with a failure threshold); `llm_row` is the row path for one post (serving), returning the same values
as a mapping. Which LLM outputs a set of groups needs, the groups declare (features/matrix.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hybrid_scorer.config import DEFAULT_CONCURRENCY, Settings
from hybrid_scorer.data import DataReport
from hybrid_scorer.errors import ConfigurationError
from hybrid_scorer.features.llm import attach_llm_columns, llm_row_values
from hybrid_scorer.features.matrix import groups_needing, llm_needs
from hybrid_scorer.llm.client import AssessmentResult, EmbeddingResult, LLMClient
from hybrid_scorer.llm.extract import DEFAULT_MAX_FAILURE_RATE, Extraction, assessment_row, extract
from hybrid_scorer.llm.factory import make_client
from hybrid_scorer.llm.prompts import PostText
from hybrid_scorer.llm.schema import question_fields
from hybrid_scorer.llm.usage import LLMOutput

CALL_NAMES = {LLMOutput.ASSESSMENT: "assessments", LLMOutput.EMBEDDING: "embeddings"}


def call_labels(groups: Sequence[str]) -> dict[str, str]:
    """What each kind of LLM call feeds among these groups, for failure messages."""

    def of(output: LLMOutput) -> str:
        used = [f"'{g}'" for g in groups_needing(output, groups)]
        return f"the {CALL_NAMES[output]} of feature group{'s' if len(used) > 1 else ''} {' and '.join(used)}"

    return {output.value: of(output) for output in LLMOutput}


@dataclass
class LLMColumns:
    posts: pd.DataFrame  # the posts with the `llm_*` columns the groups read
    extraction: Extraction  # every call's result and usage, failures included


def llm_columns(
    posts: pd.DataFrame,
    groups: Sequence[str],
    client: LLMClient | None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    max_failure_rate: float | None = DEFAULT_MAX_FAILURE_RATE,
) -> LLMColumns:
    """Posts plus the LLM columns these groups read, extracted through the cache.

    With `max_failure_rate`, too many posts without LLM features raise ExtractionFailedError (naming the
    failure kinds) instead of handing NaN columns to a fit."""
    needs = llm_needs(groups)
    if not needs:
        return LLMColumns(posts, Extraction())
    if client is None:
        raise ConfigurationError(f"feature groups {list(groups)} need an LLM: pass --llm SPEC")
    want_embeddings = LLMOutput.EMBEDDING in needs
    extraction = extract(client, posts, LLMOutput.ASSESSMENT in needs, want_embeddings, concurrency, progress)
    if max_failure_rate is not None:
        extraction.check(max_failure_rate, call_labels(groups))
    enriched = attach_llm_columns(posts, extraction.assessments, extraction.embeddings if want_embeddings else None)
    return LLMColumns(enriched, extraction)


@dataclass
class LLMRow:
    values: dict[str, Any]  # the post's `llm_*` values, as features.base.PostRow.llm holds them
    results: list[AssessmentResult | EmbeddingResult]  # every call's result and usage, failures included

    @property
    def failed(self) -> AssessmentResult | EmbeddingResult | None:
        return next((r for r in self.results if r.error), None)


def llm_row(client: LLMClient, post: PostText, needs: frozenset[LLMOutput], cached_only: bool = False) -> LLMRow | None:
    """The row path of llm_columns for one post: its LLM outputs through the cache. With `cached_only`,
    None unless every output is cached (nothing is sent to the backend)."""
    results: list[AssessmentResult | EmbeddingResult] = []
    table_row, vector = None, None
    if LLMOutput.ASSESSMENT in needs:
        assessed = client.cached_assessment(post) if cached_only else client.assess(post)
        if assessed is None:
            return None
        results.append(assessed)
        table_row = assessment_row(assessed, question_fields(client.prompt.response_model))
    if LLMOutput.EMBEDDING in needs:
        embedded = client.cached_embedding(post) if cached_only else client.embed(post)
        if embedded is None:
            return None
        results.append(embedded)
        vector = embedded.vector
    return LLMRow(llm_row_values(table_row, vector), results)


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
    concurrency: int = DEFAULT_CONCURRENCY
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE

    def client(self) -> LLMClient | None:
        return client_for(self.llm, self.settings)

    def enriched(self, groups: Sequence[str], client: LLMClient | None) -> pd.DataFrame:
        """The job's posts with the LLM columns these groups need; refuses past the failure threshold."""
        return llm_columns(
            self.posts, groups, client, self.concurrency, self.progress, max_failure_rate=self.max_failure_rate
        ).posts
