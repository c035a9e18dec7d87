"""LLMClient: one place for caching, retries, re-asks, validation and usage accounting.

Backends are small classes that make one raw call; everything else lives here (instructor-style):
`structured(messages, response_model)` is the one validated call, `assess` and `embed` are built on it
and on the cache. Transient errors (timeouts, connection errors, 408/409/429, 5xx) are retried with
exponential backoff and jitter, honouring a server's `retry-after`; a reply that fails validation gets
one re-ask quoting the error and the schema, then is a counted failure, never a clamped value."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

import httpx
import numpy as np
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from hybrid_scorer.llm.cache import KeyBuilder
from hybrid_scorer.llm.prompts import PostText, PromptTemplate
from hybrid_scorer.llm.protocol import Backend, backend_spec
from hybrid_scorer.llm.schema import PostAssessment
from hybrid_scorer.llm.store import FeatureStore
from hybrid_scorer.llm.usage import LLMFailure, LLMOutput, Usage, UsageLedger

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
TRANSIENT_STATUS = {408, 409, 429}
MAX_RETRY_AFTER_S = 60.0


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


@dataclass
class StructuredResult(Generic[M]):
    """A validated reply (or the error that prevented one) and what it cost."""

    value: M | None
    usage: Usage
    expected: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    embedding: np.ndarray | None = None  # from backends that embed in the same pass (live calls only)


class ReplyValidationError(ValueError):
    """The reply did not match the schema (bad JSON, a missing field or a value out of range)."""


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


def failure_kind(exc: BaseException) -> LLMFailure:
    """What kind of failure an exception of a call is (LLMFailure says what each means)."""
    if isinstance(exc, ReplyValidationError):
        return LLMFailure.VALIDATION
    if isinstance(exc, TimeoutError | httpx.TimeoutException) or "Timeout" in type(exc).__name__:
        return LLMFailure.TIMEOUT
    return LLMFailure.TRANSIENT if is_transient(exc) else LLMFailure.ERROR


def retry_after_s(exc: BaseException | None) -> float | None:
    """A server's `retry-after` (seconds form) from an HTTP error response, when it sent one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return min(float(value), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None


def parse_reply(text: str, response_model: type[M]) -> M:
    try:
        return response_model.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ReplyValidationError(f"not valid JSON ({exc})") from exc
    except (ValidationError, TypeError) as exc:
        raise ReplyValidationError(str(exc)) from exc


def reask_message(error: ReplyValidationError, schema: dict[str, Any]) -> str:
    """The follow-up after an invalid reply: the validation error itself and the schema to meet."""
    return (
        f"That reply is invalid: {error}\nAnswer again with only a JSON object that matches this JSON schema:"
        f" {json.dumps(schema, sort_keys=True)}"
    )


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class LLMClient:
    """assess(post) and embed(post) with cache, retries, re-ask and the usage ledger."""

    def __init__(
        self,
        backend: Backend,
        prompt: PromptTemplate,
        cache: FeatureStore | None = None,
        ledger: UsageLedger | None = None,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        embedder: Backend | None = None,
    ) -> None:
        self.backend = backend
        self.embedder = embedder or backend  # who embeds: the chat backend unless another is given
        self.prompt = prompt
        self.cache = cache
        self.ledger = ledger if ledger is not None else UsageLedger(backend_spec(backend.name, backend.model))
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._request_keys: dict[type[BaseModel], KeyBuilder] = {}

    @property
    def spec(self) -> str:
        return backend_spec(self.backend.name, self.backend.model)

    @property
    def embedding_spec(self) -> str:
        return backend_spec(self.embedder.name, self.embedder.embedding_model)

    @property
    def one_pass(self) -> bool:
        """The embedding comes out of the assessment pass (the chat backend embeds, and does so in it)."""
        return self.embedder is self.backend and self.backend.embeds_in_assessment

    @property
    def provenance(self) -> Provenance:
        return Provenance(backend=self.backend.name, model=self.backend.model, prompt_version=self.prompt.version)

    def request_key(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> str:
        """Hash of the exact request the backend receives (rendered messages, the schema as sent) and of
        the backend's identity (model, weights, runtime, decoding): change any of them and the key misses."""
        if response_model not in self._request_keys:  # the schema and identity are encoded once per model class
            self._request_keys[response_model] = KeyBuilder(
                LLMOutput.ASSESSMENT,
                "messages",
                backend=self.backend.name,
                identity=self.backend.identity(),
                schema=self.backend.request_schema(response_model),
            )
        return self._request_keys[response_model].key(messages)

    def assessment_key(self, post: PostText) -> str:
        return self.request_key(self.prompt.messages(post), self.prompt.response_model)

    @cached_property
    def _embedding_keys(self) -> KeyBuilder:
        identity = self.embedder.embedding_identity()
        return KeyBuilder(
            LLMOutput.EMBEDDING,
            "messages" if self.one_pass else "text",
            backend=self.embedder.name,
            identity=identity,
        )

    def embedding_key(self, post: PostText) -> str:
        """Keyed by the text embedded, or by the rendered messages when the vector comes from the
        assessment pass (it then depends on the prompt around the post)."""
        return self._embedding_keys.key(self.prompt.messages(post) if self.one_pass else post.embedding_input())

    def _wait(self, state: RetryCallState) -> float:
        after = retry_after_s(state.outcome.exception() if state.outcome else None)
        if after is not None:
            return after
        return float((wait_exponential(multiplier=self.backoff_s, max=30.0) + wait_random(0, self.backoff_s))(state))

    def _call(self, fn: Any, usage: Usage, *args: Any) -> Any:
        """Run a backend call under the retry policy, counting every attempt in `usage`."""
        for attempt in Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            reraise=True,
        ):
            with attempt:
                usage.attempts += 1
                return fn(*args)
        raise AssertionError("unreachable: tenacity reraises")

    def _cached(self, key: str, response_model: type[M]) -> StructuredResult[M] | None:
        cached = self.cache.get_json(key) if self.cache is not None else None
        if cached is None:
            return None
        # keep what producing it cost (tokens, ms) but mark it as served from the cache
        usage = Usage.model_validate(cached["usage"]).model_copy(update={"cache_hit": True})
        self.ledger.record(usage)
        return StructuredResult(response_model.model_validate(cached["value"]), usage, cached["expected"])

    def structured(
        self, messages: list[dict[str, str]], response_model: type[M], use_cached: bool = True
    ) -> StructuredResult[M]:
        """One validated structured call through the cache: the model instance, or a counted failure.
        `use_cached=False` makes the call even when its answer is cached (to get what the cache lacks)."""
        key = self.request_key(messages, response_model)
        cached = self._cached(key, response_model) if use_cached else None
        if cached is not None:
            return cached
        usage = Usage(kind=LLMOutput.ASSESSMENT)
        started = time.perf_counter()
        result: StructuredResult[M] = StructuredResult(None, usage)
        try:
            result.value, result.expected, result.embedding = self._with_reask(messages, response_model, usage)
        except Exception as exc:  # one bad post never kills a batch: it becomes a counted failure
            usage.failure = failure_kind(exc)
            result.error = _error_text(exc)
            log.warning("structured call failed (%s): %s", usage.failure, result.error)
        usage.latency_ms = (time.perf_counter() - started) * 1000
        self.ledger.record(usage)
        if self.cache is not None and result.value is not None:
            value = result.value.model_dump(mode="json")
            self.cache.set_json(key, {"value": value, "expected": result.expected, "usage": usage.model_dump()})
        return result

    def _with_reask(
        self, messages: list[dict[str, str]], response_model: type[M], usage: Usage
    ) -> tuple[M, dict[str, float], np.ndarray | None]:
        embedding = None
        for reask in (False, True):
            reply = self._call(self.backend.complete, usage, messages, response_model)
            usage.prompt_tokens += reply.prompt_tokens
            usage.completion_tokens += reply.completion_tokens
            embedding = embedding if embedding is not None else reply.embedding  # the post's pass, not the re-ask's
            try:
                return parse_reply(reply.text, response_model), reply.expected, embedding
            except ReplyValidationError as exc:
                if reask:
                    raise
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": reask_message(exc, response_model.model_json_schema())},
                ]
        raise AssertionError("unreachable")

    def _assessment(self, post: PostText, reply: StructuredResult[PostAssessment]) -> AssessmentResult:
        return AssessmentResult(
            post_id=post.post_id,  # the cache is keyed by content: twins share an entry, not an identity
            assessment=reply.value,
            expected=reply.expected,
            usage=reply.usage,
            provenance=self.provenance,
            error=reply.error,
        )

    def cached_assessment(self, post: PostText) -> AssessmentResult | None:
        """The post's assessment if the cache holds it; None otherwise (nothing is sent)."""
        reply = self._cached(self.assessment_key(post), self.prompt.response_model)
        return self._assessment(post, reply) if reply is not None else None

    def assess(self, post: PostText) -> AssessmentResult:
        """The post's assessment; from a backend that embeds in the same pass, its embedding is cached
        too (at no extra token or millisecond: `embed` then finds it)."""
        reply = self.structured(self.prompt.messages(post), self.prompt.response_model)
        if reply.embedding is not None and self.one_pass:
            self._keep_embedding(self.embedding_key(post), reply.embedding, Usage(kind=LLMOutput.EMBEDDING))
        return self._assessment(post, reply)

    def cached_embedding(self, post: PostText) -> EmbeddingResult | None:
        """The post's embedding if the cache holds it; None otherwise (nothing is sent)."""
        key = self.embedding_key(post)
        cached = self.cache.get_vector(key) if self.cache is not None else None
        if cached is None:
            return None
        stored = self.cache.get_json(key + ":usage") if self.cache is not None else None
        usage = Usage.model_validate(stored or {"kind": LLMOutput.EMBEDDING}).model_copy(update={"cache_hit": True})
        self.ledger.record(usage)
        return EmbeddingResult(post_id=post.post_id, vector=cached, usage=usage, provenance=self.provenance)

    def embed(self, post: PostText) -> EmbeddingResult:
        cached = self.cached_embedding(post)
        if cached is not None:
            return cached
        usage = Usage(kind=LLMOutput.EMBEDDING)
        started = time.perf_counter()
        result = EmbeddingResult(post_id=post.post_id, usage=usage, provenance=self.provenance)
        try:
            result.vector = _checked(self._embed_live(post, usage))
        except Exception as exc:  # as for assessments: a counted failure, never a crashed batch
            usage.failure = failure_kind(exc)
            result.error = _error_text(exc)
            log.warning("embedding of %s failed (%s): %s", post.post_id, usage.failure, result.error)
        usage.latency_ms = (time.perf_counter() - started) * 1000
        self.ledger.record(usage)
        if result.vector is not None:
            self._keep_embedding(self.embedding_key(post), result.vector, usage)
        return result

    def _embed_live(self, post: PostText, usage: Usage) -> np.ndarray:
        if not self.one_pass:
            raw = self._call(self.embedder.embed, usage, post.embedding_input())
            usage.prompt_tokens = raw.prompt_tokens
            return np.asarray(raw.vector, dtype=np.float32)
        # the assessment pass yields the vector; its tokens and time are the assessment's, in the ledger
        reply = self.structured(self.prompt.messages(post), self.prompt.response_model, use_cached=False)
        if reply.embedding is None:
            raise ReplyValidationError(f"the assessment pass returned no embedding: {reply.error}")
        return reply.embedding

    def _keep_embedding(self, key: str, vector: np.ndarray, usage: Usage) -> None:
        if self.cache is not None:
            self.cache.set_vector(key, vector)
            self.cache.set_json(key + ":usage", usage.model_dump())


def _checked(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    if vector.ndim != 1 or vector.size == 0 or not np.all(np.isfinite(vector)):
        raise ReplyValidationError(f"embedding of shape {vector.shape} is empty or holds NaN/inf")
    return vector
