"""What the routes share: the predictor that scores, its metrics, the limits and keys, readiness, and the
swap of a new release on SIGHUP. One per service, kept in `app.state` and handed to routes by
dependencies.py."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import HTTPException

from hybrid_scorer.errors import StoreUnavailableError
from hybrid_scorer.outcomes import Feedback
from hybrid_scorer.roles import Role
from hybrid_scorer.serving.access import ApiKeys, TokenBuckets
from hybrid_scorer.serving.metrics import ServiceMetrics
from hybrid_scorer.serving.predictor import Predictor
from hybrid_scorer.serving.schemas import FeedbackAccepted, FeedbackInput, Prediction

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """What the routes share: the predictor, its metrics, the limits, and whether it is ready yet
    (loading and warming happen in the background after start; /readyz says 503 until they are done)."""

    predictor: Predictor
    metrics: ServiceMetrics
    max_batch: int
    keys: ApiKeys | None = None
    buckets: TokenBuckets | None = None
    ready: bool = False
    reason: str = "loading the models and warming the LLM"
    reloading: bool = False

    def warm(self) -> None:
        try:
            self.predictor.warm()
        except Exception as exc:  # reported by /readyz; the process stays up so the reason can be read
            self.reason = f"{type(exc).__name__}: {exc}"
            log.error("the service is not ready: %s", self.reason)
            return
        self._serving(self.predictor)
        self.ready, self.reason = True, "ready"
        self.metrics.ready.set(1)

    def _serving(self, predictor: Predictor) -> None:
        """Make `predictor` the one that scores, and say which models it serves."""
        self.predictor = predictor
        self.metrics.model_info.clear()
        for role, model in predictor.models.by_role():
            if model.manifest_ is not None:
                labels = (
                    model.manifest_.version,
                    model.manifest_.llm_model or "none",
                    model.manifest_.prompt_version or "none",
                )
                self.metrics.model_info.labels(role, *labels).set(1)
        # Everything loaded so far (models, vocabularies, libraries) lives as long as the process: moved out
        # of the collector's generations, a full collection no longer walks it mid-request (p99 at 8
        # connections 65 -> 19 ms, bench/load.py)
        gc.collect()
        gc.freeze()

    async def reload(self) -> None:
        """SIGHUP: load, check and warm the models now at the model path beside the serving ones, then
        swap them in; requests in flight finish on the old ones. A reload that fails leaves the old models
        serving and says why (log, hybrid_scorer_model_reloads_total{result="failure"})."""
        if self.reloading:
            log.warning("reload already under way: this SIGHUP is ignored")
            return
        self.reloading = True
        try:
            successor = self.predictor.successor()
            await asyncio.to_thread(successor.warm)
        except Exception as exc:
            self.metrics.reloads.labels("failure").inc()
            log.error("reload failed, still serving %s: %s: %s", self.predictor.model_ref, type(exc).__name__, exc)
            return
        finally:
            self.reloading = False
        # the old predictor is not shut down: requests in flight may still call its LLM; it (and its model)
        # is freed when the last of them lets go of it
        self._serving(successor)
        self.metrics.reloads.labels("success").inc()
        log.warning("reloaded: now serving %s", successor.models.model_dir)

    def feedback(self, items: list[FeedbackInput]) -> FeedbackAccepted:
        """Stored before the answer, so an accepted label is never lost; an unreachable store is a 503 the
        caller retries (counted in hybrid_scorer_store_write_failures_total)."""
        now = datetime.now(UTC)
        try:
            accepted = self.predictor.outcomes.add_feedback(
                Feedback(i.prediction_id, i.score, i.observed_at or now) for i in items
            )
        except StoreUnavailableError as exc:
            log.warning("feedback refused: %s", exc)
            raise HTTPException(503, "the outcome store is unreachable: retry", headers={"retry-after": "1"}) from exc
        self.metrics.feedback.inc(accepted)
        return FeedbackAccepted(accepted=accepted)

    def observed(self, prediction: Prediction) -> Prediction:
        role = Role.HYBRID if prediction.llm_called and not prediction.fallback else Role.CONTENT
        self.metrics.observe_prediction(prediction, role)
        return prediction
