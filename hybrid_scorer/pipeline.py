"""Glue shared by the CLI, the ablation and serving: data + LLM columns for a set of feature groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from hybrid_scorer.config import Settings
from hybrid_scorer.data import DataReport
from hybrid_scorer.features.llm import attach_llm_columns
from hybrid_scorer.llm.backends import make_client
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.extract import extract


def needs_llm(groups: Sequence[str]) -> tuple[bool, bool]:
    """(needs assessments, needs embeddings) for these feature groups."""
    return "llm_ratings" in groups, "llm_embedding" in groups


def with_llm_columns(
    posts: pd.DataFrame, groups: Sequence[str], client: LLMClient | None, concurrency: int = 4, progress: bool = True
) -> pd.DataFrame:
    """Posts plus the LLM columns these groups read (extracted through the cache)."""
    want_ratings, want_embeddings = needs_llm(groups)
    if not (want_ratings or want_embeddings):
        return posts
    if client is None:
        raise ValueError(f"feature groups {list(groups)} need an LLM: pass --llm SPEC")
    extraction = extract(
        client, posts, assessments=want_ratings, embeddings=want_embeddings, concurrency=concurrency, progress=progress
    )
    return attach_llm_columns(posts, extraction.assessments, extraction.embeddings if want_embeddings else None)


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

    def client(self) -> LLMClient | None:
        return client_for(self.llm, self.settings)
