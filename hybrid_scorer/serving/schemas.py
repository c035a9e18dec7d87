"""The serving boundary: what a caller sends (PostInput) and gets back (Prediction), as pydantic models.

The same models validate `predict()` calls and HTTP bodies and generate the service's OpenAPI schema."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints, ValidationError, field_validator

from hybrid_scorer.errors import HybridScorerError

MAX_TITLE_CHARS = 300  # reddit's own limit
MAX_BODY_CHARS = 40_000  # reddit's self-post limit


class PostInput(BaseModel):
    """One post to score. Unknown fields are rejected, so a typo ('titel') is an error, not a silent NaN.

    `flair` left out (or null) means "not known to the caller", which is not the same as a post that
    was published without a flair: send "" for that."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"title": "Why is the sky blue?", "body": "Why not violet?"}]}
    )

    # the title is stripped (a blank one is an error); the body is kept as written, as in training, where
    # its paragraphs are counted on the raw text
    title: Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS)]
    body: StrictStr = Field(default="", max_length=MAX_BODY_CHARS)
    flair: StrictStr | None = Field(default=None, max_length=100, description='null: unknown; "": posted without')
    created_utc: datetime | None = Field(default=None, description="ISO time of posting; default: now")

    @field_validator("created_utc")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def describe_errors(errors: Sequence[Any]) -> str:
    """One message naming every offending field, what is wrong with it, and the shape expected."""
    problems = [f"'{'.'.join(str(p) for p in e['loc']) or 'post'}': {e['msg']}" for e in errors]
    return (
        "invalid post: " + "; ".join(problems) + " (expected {'title': non-empty str, 'body': str,"
        " optional 'flair': str, optional 'created_utc': ISO datetime})"
    )


class PredictionInputError(HybridScorerError, ValueError):
    """Bad input; the message names each offending field and what it should be."""

    @classmethod
    def from_validation(cls, exc: ValidationError) -> PredictionInputError:
        return cls(describe_errors(exc.errors()))


class Prediction(BaseModel):
    score: float
    log_score: float
    interval_80: tuple[float, float] | None = Field(
        default=None, description="scores between which the true score lies with 80% probability (conformal)"
    )
    interval_90: tuple[float, float] | None = Field(default=None, description="the same at 90%")
    p_top: float | None = Field(
        default=None,
        description="the probability that the post lands in the upper of the score's two modes (score >= 1,000),"
        " when the served model estimates it",
    )
    model_version: str
    latency_ms: float
    llm_latency_ms: float = 0.0
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0
    cache_hit: bool = False
    llm_called: bool = False
    llm_failure: str | None = Field(default=None, description="timeout | busy | validation | transient | error")
    fallback: bool = False
    fallback_reason: str | None = None
    contributions: dict[str, float] | None = Field(
        default=None, description="with explain: each feature group's share of log_score (LightGBM pred_contrib)"
    )
