"""LLMClient: one place for caching, retries, re-asks, validation and usage accounting.

Backends are small classes that make one raw call; everything else lives here (instructor-style).
Transient errors (timeouts, connection errors, 429, 5xx) are retried with exponential backoff and
jitter; a reply that fails schema validation gets one re-ask quoting the error, then is a failure."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import numpy as np
from pydantic import BaseModel, ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from hybrid_scorer.llm.cache import LLMCache, cache_key
from hybrid_scorer.llm.prompts import PostText, PromptTemplate
from hybrid_scorer.llm.schema import PostAssessment, assessment_schema, schema_text
from hybrid_scorer.llm.usage import Usage, UsageLedger

log = logging.getLogger(__name__)


@dataclass
class RawReply:
    """What a backend returns for one chat call."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    server_ms: float = 0.0  # time the server reports spending (Ollama's total_duration), when it does
    expected: dict[str, float] = field(default_factory=dict)  # probability-weighted ratings, if available


@dataclass
class RawEmbedding:
    vector: np.ndarray
    prompt_tokens: int = 0


class Backend(Protocol):
    """One raw call each; raise the library's own exceptions (the client classifies them)."""

    name: str
    model: str
    is_local: bool  # local backends cost 0 and run one call at a time in-process

    @property
    def params(self) -> dict[str, Any]:
        """Everything besides prompt and post that changes an assessment (sampling, decoding)."""
        ...

    @property
    def embedding_params(self) -> dict[str, Any]:
        """Everything besides the text that changes an embedding (model, pooling, truncation)."""
        ...

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> RawReply: ...

    def embed(self, text: str) -> RawEmbedding: ...


class Provenance(BaseModel):
    backend: str
    model: str
    prompt_version: str


class AssessmentResult(BaseModel):
    """The assessment or the failure, the usage and where it came from."""

    post_id: str
    assessment: PostAssessment | None = None
    expected: dict[str, float] = {}
    usage: Usage
    provenance: Provenance
    error: str | None = None


class EmbeddingResult(BaseModel):
    model_config = {"arbitrary_types_allowed": True}

    post_id: str
    vector: np.ndarray | None = None
    usage: Usage
    provenance: Provenance
    error: str | None = None


class ReplyValidationError(ValueError):
    """The reply did not match the schema (bad JSON or a value out of range)."""


TRANSIENT_STATUS = {408, 409, 429}


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, dropped connections, rate limits and server errors. Never validation."""
    if isinstance(exc, ReplyValidationError):
        return False
    if isinstance(exc, TimeoutError | ConnectionError | httpx.TimeoutException | httpx.NetworkError):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in TRANSIENT_STATUS or status >= 500
    # openai.APIConnectionError (and its APITimeoutError) carry no status code
    return type(exc).__name__ in {"APIConnectionError", "APITimeoutError"}


def failure_kind(exc: BaseException) -> str:
    if isinstance(exc, ReplyValidationError):
        return "validation"
    if isinstance(exc, TimeoutError | httpx.TimeoutException) or "Timeout" in type(exc).__name__:
        return "timeout"
    return "transient" if is_transient(exc) else "error"


def parse_assessment(text: str) -> PostAssessment:
    try:
        return PostAssessment.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError, TypeError) as exc:
        raise ReplyValidationError(
            str(exc).splitlines()[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
        ) from exc


class LLMClient:
    """assess(post) and embed(post) with cache, retries, re-ask and the usage ledger."""

    def __init__(
        self,
        backend: Backend,
        prompt: PromptTemplate,
        cache: LLMCache | None = None,
        ledger: UsageLedger | None = None,
        max_retries: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        self.backend = backend
        self.prompt = prompt
        self.cache = cache
        self.ledger = ledger if ledger is not None else UsageLedger(backend.name)
        self.max_retries = max_retries
        self.backoff_s = backoff_s

    @property
    def spec(self) -> str:
        return f"{self.backend.name}:{self.backend.model}"

    @property
    def provenance(self) -> Provenance:
        return Provenance(backend=self.backend.name, model=self.backend.model, prompt_version=self.prompt.version)

    def assessment_key(self, post: PostText) -> str:
        return cache_key(
            "assess",
            backend=self.backend.name,
            model=self.backend.model,
            prompt=self.prompt.sha256,
            schema=schema_text(),
            params=self.backend.params,
            title=post.title,
            body=post.body,
        )

    def embedding_key(self, post: PostText) -> str:
        return cache_key(
            "embed",
            backend=self.backend.name,
            model=self.backend.model,
            params=self.backend.embedding_params,
            text=post.embedding_input(),
        )

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff_s, max=30.0) + wait_random(0, self.backoff_s),
            reraise=True,
        )

    def _call(self, fn: Any, usage: Usage, *args: Any) -> Any:
        """Run a backend call under the retry policy, counting every attempt in `usage`."""
        for attempt in self._retrying():
            with attempt:
                usage.attempts += 1
                return fn(*args)
        raise AssertionError("unreachable: tenacity reraises")

    def assess(self, post: PostText) -> AssessmentResult:
        key = self.assessment_key(post)
        cached = self.cache.get_json(key) if self.cache is not None else None
        if cached is not None:
            result = AssessmentResult.model_validate(cached)
            # the cache is keyed by content: two posts with the same text share an entry, not an identity
            result.post_id = post.post_id
            # keep what producing it cost (tokens, ms) but mark it as served from the cache
            result.usage = result.usage.model_copy(update={"cache_hit": True})
            self.ledger.record(result.usage)
            return result
        usage = Usage(kind="assess")
        started = time.perf_counter()
        result = AssessmentResult(post_id=post.post_id, usage=usage, provenance=self.provenance)
        try:
            result.assessment, result.expected = self._assess_with_reask(post, usage)
        except Exception as exc:  # one bad post never kills a batch: it becomes a counted failure
            usage.failure = failure_kind(exc)
            result.error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("assessment of %s failed (%s): %s", post.post_id, usage.failure, result.error)
        usage.latency_ms = (time.perf_counter() - started) * 1000
        self.ledger.record(usage)
        if self.cache is not None and result.assessment is not None:
            self.cache.set_json(key, result.model_dump(mode="json"))
        return result

    def _assess_with_reask(self, post: PostText, usage: Usage) -> tuple[PostAssessment, dict[str, float]]:
        messages = self.prompt.messages(post)
        for reask in (False, True):
            reply = self._call(self.backend.complete, usage, messages, assessment_schema())
            usage.prompt_tokens += reply.prompt_tokens
            usage.completion_tokens += reply.completion_tokens
            usage.server_ms += reply.server_ms
            try:
                return parse_assessment(reply.text), reply.expected
            except ReplyValidationError as exc:
                if reask:
                    raise
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply.text},
                    {
                        "role": "user",
                        "content": f"That reply is invalid: {exc}. Answer again with only the JSON"
                        " object, every rating an integer from 1 to 5.",
                    },
                ]
        raise AssertionError("unreachable")

    def embed(self, post: PostText) -> EmbeddingResult:
        key = self.embedding_key(post)
        cached = self.cache.get_vector(key) if self.cache is not None else None
        if cached is not None:
            stored = self.cache.get_json(key + ":usage") if self.cache is not None else None
            usage = Usage.model_validate(stored or {"kind": "embed"}).model_copy(update={"cache_hit": True})
            self.ledger.record(usage)
            return EmbeddingResult(post_id=post.post_id, vector=cached, usage=usage, provenance=self.provenance)
        usage = Usage(kind="embed")
        started = time.perf_counter()
        result = EmbeddingResult(post_id=post.post_id, usage=usage, provenance=self.provenance)
        try:
            raw = self._call(self.backend.embed, usage, post.embedding_input())
            usage.prompt_tokens = raw.prompt_tokens
            result.vector = np.asarray(raw.vector, dtype=np.float32)
            if not np.all(np.isfinite(result.vector)):
                raise ReplyValidationError("embedding contains NaN or inf")
        except Exception as exc:
            usage.failure = failure_kind(exc)
            result.vector = None
            result.error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("embedding of %s failed (%s): %s", post.post_id, usage.failure, result.error)
        usage.latency_ms = (time.perf_counter() - started) * 1000
        self.ledger.record(usage)
        if self.cache is not None and result.vector is not None:
            self.cache.set_vector(key, result.vector)
            self.cache.set_json(key + ":usage", usage.model_dump())
        return result
