"""Batch extraction over many posts: progress bar, concurrency for remote backends, resumable.

The cache is the checkpoint: every finished post is written as soon as it is done, so an interrupted
run loses at most the posts in flight and a rerun recomputes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hybrid_scorer.llm.client import AssessmentResult, LLMClient
from hybrid_scorer.llm.prompts import PostText
from hybrid_scorer.llm.schema import RATING_FIELDS

log = logging.getLogger(__name__)
T = TypeVar("T")


def post_texts(posts: pd.DataFrame) -> list[PostText]:
    """What the LLM reads: cleaned title and body with their case (never the lowercased TF-IDF text)."""
    return [
        PostText(p, t, b) for p, t, b in zip(posts["post_id"], posts["title_clean"], posts["body_clean"], strict=True)
    ]


def assessment_row(result: AssessmentResult) -> dict[str, object]:
    """One table row: ratings (NaN on failure), expectations, failure kind and provenance."""
    row: dict[str, object] = {"post_id": result.post_id, **result.provenance.model_dump()}
    assessment = result.assessment
    row["topic"] = assessment.topic.value if assessment else None
    for name in RATING_FIELDS:
        row[name] = float(getattr(assessment, name)) if assessment else np.nan
        row[f"{name}_expected"] = result.expected.get(name, np.nan) if assessment else np.nan
    row["failure"] = result.usage.failure
    row["cache_hit"] = result.usage.cache_hit
    return row


@dataclass
class Extraction:
    assessments: pd.DataFrame | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


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


def extract(
    client: LLMClient,
    posts: pd.DataFrame | Iterable[PostText],
    assessments: bool = True,
    embeddings: bool = True,
    concurrency: int = 4,
    progress: bool = True,
) -> Extraction:
    """Assess and/or embed every post. Local backends run one call at a time (one model in memory)."""
    items = post_texts(posts) if isinstance(posts, pd.DataFrame) else list(posts)
    workers = 1 if client.backend.is_local else concurrency
    out = Extraction()
    if embeddings:
        results = _map(client.embed, items, workers, "embed", progress)
        out.embeddings = {r.post_id: r.vector for r in results if r.vector is not None}
    if assessments:
        rows = [assessment_row(r) for r in _map(client.assess, items, workers, "assess", progress)]
        out.assessments = pd.DataFrame(rows)
    return out
