"""The hybrid's LLM outputs for one post under the service's limits: cached ones at once; otherwise one
call through a bounded queue, within the latency budget and the spend limit. Every way this can fail
(the LLM errs, is too slow, too busy, or the spend limit is reached) is an LLMUnavailableError naming
its kind inside, and comes out as the reason the predictor gives when the content model answers.
`warm` loads the LLM and checks it against the model before the first request, so nothing loads inside
a request's budget."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from hybrid_scorer.errors import ModelMismatchError
from hybrid_scorer.llm.client import AssessmentResult, EmbeddingResult, LLMClient
from hybrid_scorer.llm.prompts import PostText
from hybrid_scorer.llm.usage import LLMFailure, LLMOutput, cost_usd
from hybrid_scorer.pipeline import LLMRow, llm_row
from hybrid_scorer.serving.llm_queue import LLMQueue, QueueFullError
from hybrid_scorer.serving.spend import SpendLimit

log = logging.getLogger(__name__)
WARMUP_POST = PostText("warmup", "Why is the sky blue?", "And why not violet?")


# the post's LLM outputs, or (None, why the LLM could not give them: the content model scores the post)
Outcome = tuple[dict[str, Any], None] | tuple[None, str]


class LLMUnavailableError(RuntimeError):
    """The LLM could not give this post its features (failed, too slow or too busy): fall back."""

    def __init__(self, reason: str, failure: LLMFailure) -> None:
        super().__init__(reason)
        self.failure = failure


@dataclass
class LLMCall:
    """What the LLM did for one prediction (filled in as it happens, so a failure is still recorded)."""

    called: bool = False
    latency_ms: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    failure: LLMFailure | None = None

    def account(self, results: list[AssessmentResult | EmbeddingResult], client: LLMClient) -> None:
        usages = [r.usage for r in results]
        live = [u for u in usages if not u.cache_hit]
        self.tokens = sum(u.prompt_tokens + u.completion_tokens for u in live)
        self.cost_usd = cost_usd(live, client.ledger.prices)
        self.cache_hit = bool(usages) and all(u.cache_hit for u in usages)


class LLMFeatures:
    """The outputs `needs` of `client` for served posts: `queue` bounds the live calls, `budget_ms` how
    long a request waits for one, `spend` what they may cost."""

    def __init__(
        self, client: LLMClient, needs: frozenset[LLMOutput], queue: LLMQueue, spend: SpendLimit, budget_ms: float
    ) -> None:
        self.client, self.needs, self.queue, self.spend, self.budget_ms = client, needs, queue, spend, budget_ms

    def values(self, post: PostText, call: LLMCall) -> Outcome:
        """The post's LLM outputs within the budget (cached ones at once, live ones through the queue), or
        why the LLM could not give them."""
        try:
            return self._values(post, call), None
        except LLMUnavailableError as exc:
            return None, _fallen_back(exc)

    async def values_async(self, post: PostText, call: LLMCall) -> Outcome:
        """values() for an event loop: a live call runs on the queue's own worker and is awaited on the
        loop, so waiting for it holds no thread, and the budget bounds the whole wait (a request that
        waited for a free thread first would wait past it)."""
        try:
            return await self._values_async(post, call), None
        except LLMUnavailableError as exc:
            return None, _fallen_back(exc)

    def _values(self, post: PostText, call: LLMCall) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            found = self._cached(post) or self._wait(self._submit(post, call), call)
        finally:
            call.latency_ms = (time.perf_counter() - started) * 1000
        return self._accounted(found, call)

    async def _values_async(self, post: PostText, call: LLMCall) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            found = self._cached(post)
            if found is None:
                future = asyncio.wrap_future(self._submit(post, call))
                try:
                    found = await asyncio.wait_for(future, timeout=self.budget_ms / 1000)
                except TimeoutError as exc:  # wait_for cancels the work: dropped if still queued
                    raise self._timed_out(call) from exc
        finally:
            call.latency_ms = (time.perf_counter() - started) * 1000
        return self._accounted(found, call)

    def _cached(self, post: PostText) -> LLMRow | None:
        return llm_row(self.client, post, self.needs, cached_only=True)

    def _submit(self, post: PostText, call: LLMCall) -> Future[LLMRow | None]:
        """The post's live call, queued: refused at once past the spend limit or when the queue could not
        answer within the budget."""
        over = self.spend.exceeded()
        if over is not None:
            call.failure = LLMFailure.BUDGET
            raise LLMUnavailableError(over, LLMFailure.BUDGET)
        try:
            return self.queue.submit(llm_row, self.client, post, self.needs)
        except QueueFullError as exc:
            call.failure = LLMFailure.BUSY
            raise LLMUnavailableError(str(exc), LLMFailure.BUSY) from exc

    def _wait(self, future: Future[LLMRow | None], call: LLMCall) -> LLMRow | None:
        try:
            return future.result(timeout=self.budget_ms / 1000)
        except FutureTimeout as exc:
            future.cancel()  # still queued: dropped; already running: it finishes and fills the cache
            raise self._timed_out(call) from exc

    def _timed_out(self, call: LLMCall) -> LLMUnavailableError:
        call.failure = LLMFailure.TIMEOUT
        return LLMUnavailableError(f"LLM exceeded the {self.budget_ms:.0f} ms budget", LLMFailure.TIMEOUT)

    def _accounted(self, found: LLMRow | None, call: LLMCall) -> dict[str, Any]:
        """The outputs of a call that answered, its tokens and cost counted; its failure raised."""
        assert found is not None  # not cached_only: every output is there, or its failure
        call.account(found.results, self.client)
        self.spend.record(call.cost_usd)
        failed = found.failed
        if failed is not None:
            call.failure = failed.usage.failure or LLMFailure.ERROR
            raise LLMUnavailableError(f"LLM failed: {failed.error}", call.failure)
        return found.values

    def warm(self, embedding_width: int | None) -> None:
        """Load the LLM (and its embedder), time one real call for the queue, and check the embedding's
        width against the model's (`embedding_width`, None: the model has no embedding group)."""
        backend = self.client.backend
        backend.warm()
        if self.client.embedder is not backend:
            self.client.embedder.warm()
        # straight to the backend, past the cache: a cached warm-up would neither exercise the model nor
        # tell the queue how long a real call takes
        started = time.perf_counter()
        reply = backend.complete(self.client.prompt.messages(WARMUP_POST), self.client.prompt.response_model)
        if self.client.one_pass:  # embedded in the assessment pass
            assert reply.embedding is not None
            vector = reply.embedding
        else:
            vector = self.client.embedder.embed(WARMUP_POST.embedding_input()).vector
        self.queue.call_ms = (time.perf_counter() - started) * 1000
        if embedding_width is not None and len(vector) != embedding_width:
            raise ModelMismatchError(
                f"{self.client.spec} embeds into {len(vector)} dimensions but the hybrid model was trained on"
                f" {embedding_width}: serve with the LLM the model was trained with, or retrain with this one"
            )

    def close(self) -> None:
        self.queue.shutdown(wait=False, cancel_futures=True)


def _fallen_back(exc: LLMUnavailableError) -> str:
    """Why the content model scores the post, as the prediction says it."""
    reason = f"{exc.failure}: {exc}"[:300]
    log.info("falling back to the content model: %s", reason)
    return reason
