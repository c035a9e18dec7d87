"""The serving boundary: what a caller sends (PostInput, batches, feedback) and gets back (Prediction, the
error answers), as pydantic models, and the words the answer carries for a person (a factor, a chance,
why the LLM did not answer), so the page and the CLI say the same.

The same models validate `predict()` calls and HTTP bodies and generate the service's OpenAPI schema."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    ValidationError,
    computed_field,
)

from hybrid_scorer.errors import HybridScorerError
from hybrid_scorer.llm.usage import LLMFailure
from hybrid_scorer.steering import Steering

MAX_TITLE_CHARS = 300  # reddit's own limit
MAX_BODY_CHARS = 40_000  # reddit's self-post limit: the longest body a caller may send

# why the LLM did not answer, in a person's words: sent in each answer, so the page and the CLI say the same
FAILURE_WORDS = {
    LLMFailure.TIMEOUT: "it took longer than this service waits",
    LLMFailure.VALIDATION: "its answer did not have the expected form",
    LLMFailure.TRANSIENT: "it could not be reached, even after retries",
    LLMFailure.ERROR: "it refused the request",
    LLMFailure.BUSY: "it was busy with other posts",
    LLMFailure.BUDGET: "this service's LLM spending limit was reached",
}


def as_percent(probability: float) -> str:
    """A probability that is neither 0 nor 1 is never shown as 0% or 100%."""
    if 0 < probability < 0.01:
        return "under 1%"
    if 0.99 < probability < 1:
        return "over 99%"
    return f"{probability:.0%}"


def as_factor(effect_log: float) -> str:
    """A share of the log score as what it does to the score: "×1.34" raises it, "÷1.20" lowers it; a
    share too small to show in two decimals is "barely", never "×1.00"."""
    if abs(effect_log) < 0.005:
        return "barely"
    return f"{'×' if effect_log > 0 else '÷'}{math.exp(abs(effect_log)):.2f}"


def _as_utc(value: datetime) -> datetime:
    """A time without a zone is UTC (reddit's and the data's convention)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_DATE_AND_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_time(value: object) -> object:
    """A datetime, or a string with a date and a time: pydantic would also read a number, or a string of
    digits ("0"), as Unix seconds and a bare date as its midnight, which the schema (a date-time string)
    does not allow and which is more often a mistake than a time."""
    if isinstance(value, int | float) or (isinstance(value, str) and not _DATE_AND_TIME.match(value)):
        raise ValueError("expected an ISO 8601 date-time string, e.g. 2026-12-01T12:00:00Z")
    return value


UTCDatetime = Annotated[datetime, BeforeValidator(_date_time), AfterValidator(_as_utc)]


class PostInput(BaseModel):
    """One post to score. Unknown fields are rejected, so a typo ('titel') is an error, not a silent NaN.

    `flair` left out (or null) means "not known to the caller", which is not the same as a post that
    was published without a flair: send "" for that."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"title": "Why is the sky blue?", "body": "Why not violet?"}]}
    )

    # the title is stripped (a blank one is an error); the body is kept as written, as in training, where
    # its paragraphs are counted on the raw text. The pattern asks for one character that Python's strip
    # keeps: JSON Schema's \s (ECMAScript's) lacks the separators \x1c-\x1f and NEL (\x85) that Python
    # strips, so "\x85" alone would pass the published schema and then fail here (and ECMAScript counts the
    # BOM, \ufeff, as space where Python does not: it is excluded too, so both sides agree)
    title: Annotated[
        StrictStr,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS, pattern=r"[^\s\x1c-\x1f\x85\ufeff]"
        ),
    ]
    body: StrictStr = Field(default="", max_length=MAX_BODY_CHARS)
    flair: StrictStr | None = Field(default=None, max_length=100, description='null: unknown; "": posted without')
    created_utc: UTCDatetime | None = Field(default=None, description="ISO time of posting; default: now")


class FeedbackInput(BaseModel):
    """A realised score for a prediction this service made (its `prediction_id`)."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: Annotated[StrictStr, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    score: float = Field(ge=0, strict=True, allow_inf_nan=False, description="the post's score when observed")
    observed_at: UTCDatetime | None = Field(default=None, description="ISO time the score was read; default: now")


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackInput] = Field(max_length=10_000)


class FeedbackAccepted(BaseModel):
    accepted: int


class Readiness(BaseModel):
    status: Literal["ready"]
    store_backlog: int = Field(description="predictions of this replica waiting for an unreachable outcome store")


POST_SHAPE = (
    f"{{'title': str of 1-{MAX_TITLE_CHARS} characters, optional 'body': str of at most {MAX_BODY_CHARS:,},"
    " optional 'flair': str,"
    " optional 'created_utc': ISO datetime}"
)
FEEDBACK_SHAPE = "prediction_id (32 hex characters), score (a number >= 0), optional observed_at (ISO datetime)"


def describe_errors(errors: Sequence[Any], what: str = "post", expected: str | None = POST_SHAPE) -> str:
    """One message naming every offending field, what is wrong with it, and the shape expected."""
    problems = [f"'{'.'.join(str(p) for p in e['loc']) or what}': {e['msg']}" for e in errors]
    return f"invalid {what}: " + "; ".join(problems) + (f" (expected {expected})" if expected else "")


class Problem(BaseModel):
    """The body of every error answer: what went wrong and, where there is one, the fix."""

    detail: str


# [low, high]: a list of two, as OpenAPI 3.1 describes it (a tuple's schema is not valid there)
Bounds = Annotated[list[float], Field(min_length=2, max_length=2)]


class PredictionInputError(HybridScorerError, ValueError):
    """Bad input; the message names each offending field and what it should be."""

    @classmethod
    def from_validation(cls, exc: ValidationError) -> PredictionInputError:
        return cls(describe_errors(exc.errors()))


class Driver(BaseModel):
    """One feature group's share of a prediction, said the way the page and the CLI say it."""

    group: str = Field(description="the feature group (a key of contributions)")
    reads_as: str = Field(description="what the group reads, in a poster's words")
    effect_log: float = Field(description="its share of log_score: positive raises the prediction")

    @computed_field(description='what it does to the score: "×1.34" raises it, "÷1.20" lowers it, or "barely"')  # type: ignore[prop-decorator]
    @property
    def factor(self) -> str:
        return as_factor(self.effect_log)


class Prediction(BaseModel):
    prediction_id: str = Field(description="send it back with the realised score: POST /v1/feedback")
    score: float
    log_score: float
    interval_80: Bounds | None = Field(
        default=None, description="scores between which the true score lies with 80% probability (conformal)"
    )
    interval_90: Bounds | None = Field(default=None, description="the same at 90%")
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
    llm_called: bool = Field(
        default=False, description="the LLM's outputs were asked for (cached or a live call: cache_hit says which)"
    )
    llm_failure: LLMFailure | None = Field(default=None, description="why the LLM's answer is missing, if it is")
    fallback: bool = False
    fallback_reason: str | None = None
    steered: bool = Field(
        default=False,
        description="one part of the post (a sentence, or a block of them at either end of the body) raised the"
        " prediction past the limit one part may add: the prediction is the post's without it, plus the limit"
        " (see steering)",
    )
    steering: Steering | None = Field(default=None, description="when steered: that part and its effect")
    flair_read_as: str | None = Field(
        default=None,
        description='the flair the model scored: one of GET /v1/flairs, "" (posted without a flair), "other" (a'
        " flair it was not trained on: check the spelling against GET /v1/flairs), null (none sent: averaged)",
    )
    contributions: dict[str, float] | None = Field(
        default=None, description="with explain: each feature group's share of log_score (LightGBM pred_contrib)"
    )
    drivers: list[Driver] | None = Field(
        default=None,
        description="with explain: the groups' shares in a poster's words, the largest first (the model's average,"
        " contributions' bias, is not one)",
    )

    @computed_field(description="p_top for a person: never 0% or 100% when it is neither")  # type: ignore[prop-decorator]
    @property
    def p_top_words(self) -> str | None:
        return None if self.p_top is None else as_percent(self.p_top)

    @computed_field(description="why the LLM did not answer, for a person")  # type: ignore[prop-decorator]
    @property
    def llm_failure_words(self) -> str | None:
        return None if self.llm_failure is None else FAILURE_WORDS[self.llm_failure]


class BatchRequest(BaseModel):
    posts: list[dict[str, Any]] = Field(description="posts shaped like PostInput; each is validated on its own")


class BatchItem(BaseModel):
    prediction: Prediction | None = None
    error: str | None = Field(default=None, description="why this post could not be scored (names the field)")


class BatchResponse(BaseModel):
    results: list[BatchItem]


class Flairs(BaseModel):
    flairs: list[str] = Field(description="the flairs the served model was trained on (normalized, lowercase)")


# the error answers every route may give, documented in the OpenAPI schema (each a Problem)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no valid API key (when the service has keys)"},
    422: {"model": Problem, "description": "names the bad field and the shape expected"},
    429: {"model": Problem, "description": "rate limit reached: retry after the Retry-After header's seconds"},
    503: {"model": Problem, "description": "not ready yet, or too many requests in flight: see Retry-After"},
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not JSON"},
    411: {"model": Problem, "description": "send a Content-Length header"},
    413: {"model": Problem, "description": "the body is over the size limit"},
}
