"""`predict(post)`: validation, the LLM's outputs under the service's limits, fallback, and a log.

The hybrid model needs the LLM's outputs for the post (llm_features.py gets them within the latency
budget, the queue's bound and the spend limit). If the LLM cannot give them, the content model (trained
without LLM features, saved next to the hybrid) scores the post instead and the prediction says so
(`fallback=True`, with the reason). Anything else that goes wrong is a bug and raises. Loading the models
and their LLM is models.py's; the intervals are the manifest's calibration (intervals.py); every
prediction is one JSON line in a size-bounded, rotating log that `hybrid-scorer monitor` reads
(predictlog.py), and a record in the outcome store that delayed labels join."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.data import clean_fields
from hybrid_scorer.features.base import PostRow
from hybrid_scorer.features.matrix import group_class
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import PostText
from hybrid_scorer.llm.usage import LLMFailure
from hybrid_scorer.model import P_TOP
from hybrid_scorer.monitoring import SIGNAL_COLUMNS
from hybrid_scorer.serving.llm_features import LLMCall
from hybrid_scorer.serving.models import ServedModels
from hybrid_scorer.serving.predictlog import PredictionLog
from hybrid_scorer.serving.schemas import Driver, PostInput, Prediction, PredictionInputError
from hybrid_scorer.serving.spend import SpendLimit
from hybrid_scorer.steering import limited
from hybrid_scorer.target import to_score


@dataclass(frozen=True)
class ServedPost:
    """A validated post, cleaned once: what the LLM reads and what the feature groups read."""

    text: PostText
    row: PostRow

    @classmethod
    def of(cls, post: PostInput) -> ServedPost:
        """An unknown flair stays None (the model averages over the flairs it was trained on), a post
        published without one has ""; without a posting time, the post is scored as posted now."""
        title, body, raw_body = clean_fields(post.title, post.body)
        post_id = "live-" + hashlib.sha256(f"{post.title}\x00{post.body}".encode()).hexdigest()[:12]
        created = post.created_utc or datetime.now(UTC)
        return cls(PostText(post_id, title, body), PostRow(title, body, raw_body, post.flair, created))


class Predictor:
    """Scores posts with the models of one release (ServedModels, loaded once and thread-safely on first
    use) and logs each prediction.

    `client` is the LLM to call for the hybrid; by default the one named in the hybrid's manifest
    (`llm="none"` serves the content model only). Loading checks that client against the manifest."""

    def __init__(
        self,
        model_dir: Path | str | None = None,
        settings: Settings | None = None,
        client: LLMClient | None = None,
        llm: str | None = None,
        log_path: Path | None = None,
        llm_budget_ms: float | None = None,
        log: PredictionLog | None = None,
        spend: SpendLimit | None = None,
    ) -> None:
        """`log` and `spend`: a predictor replacing another one in a running service (successor) keeps
        writing its log and counting its spend. Nothing is opened or started here: the log's file and
        writer on its first line, the models on the first prediction (or `load`)."""
        self.settings = settings or get_settings()
        self.model_ref = model_dir or self.settings.model_dir  # a directory or models:/hybrid-scorer@champion
        self.llm = llm
        self.client = client
        self.llm_budget_ms = llm_budget_ms if llm_budget_ms is not None else self.settings.predict_llm_budget_ms
        self.log = log or PredictionLog.for_settings(self.settings, log_path)
        assert self.log.recorder is not None
        self.recorder, self.outcomes = self.log.recorder, self.log.recorder.store
        self.spend = spend or SpendLimit(self.settings.llm_max_usd_per_hour, self.settings.llm_max_usd_per_day)
        self._lock = threading.Lock()
        self._models: ServedModels | None = None

    @property
    def models(self) -> ServedModels:
        """The served models, loaded on first use."""
        models = self._models
        if models is None:
            with self._lock:
                if self._models is None:
                    self._models = ServedModels.load(
                        self.model_ref, self.settings, self.spend, self.llm_budget_ms, self.client, self.llm
                    )
                models = self._models
        return models

    @property
    def loaded_models(self) -> ServedModels | None:
        """The served models if loaded, without loading them (what a probe may look at)."""
        return self._models

    def load(self) -> Predictor:
        """Load both models and the LLM client, and check they belong together (idempotent)."""
        self.models  # noqa: B018 (loads)
        return self

    def warm(self) -> Predictor:
        """Load everything, including the LLM itself, and check its embedding width: after this the
        first request is served like any other (nothing loads inside its latency budget)."""
        self.models.warm()
        return self

    def predict(self, post: dict[str, Any] | PostInput, explain: bool = False, caller: str = "local") -> Prediction:
        """Score one post; `caller` (an API key id, or "local" in process) goes into the log."""
        started = time.perf_counter()
        served, models, call = self._prepared(post)
        values, reason = (
            models.llm_features.values(served.text, call) if models.llm_features is not None else (None, None)
        )
        prediction, ticket = self._scored(served, models, values, reason, call, explain, caller, started)
        self.log.settled(ticket)
        return prediction

    async def predict_async(
        self, post: dict[str, Any] | PostInput, explain: bool = False, caller: str = "local"
    ) -> Prediction:
        """predict() on an event loop, without a worker thread: scoring takes about a millisecond, less than
        a hop to a thread would add, and a live LLM call runs on the LLM queue's own worker while the
        request awaits it on the loop, within the latency budget (llm_features.values_async)."""
        started = time.perf_counter()
        served, models, call = self._prepared(post)
        values, reason = (
            await models.llm_features.values_async(served.text, call)
            if models.llm_features is not None
            else (None, None)
        )
        prediction, ticket = self._scored(served, models, values, reason, call, explain, caller, started)
        await self.log.settled_async(ticket)
        return prediction

    def _prepared(self, post: dict[str, Any] | PostInput) -> tuple[ServedPost, ServedModels, LLMCall]:
        """The post validated and cleaned once, the served models, and the record of what the LLM will do
        (`called` when the hybrid is served and needs its outputs)."""
        served = ServedPost.of(validate_post(post))
        models = self.models
        return served, models, LLMCall(called=models.llm_features is not None)  # set with the hybrid (models.py)

    def _scored(
        self,
        served: ServedPost,
        models: ServedModels,
        values: dict[str, Any] | None,
        reason: str | None,
        call: LLMCall,
        explain: bool,
        caller: str,
        started: float,
    ) -> tuple[Prediction, int]:
        """The prediction from the hybrid when the LLM's outputs are there (`values`), from the content
        model otherwise, and its log ticket."""
        model, row = models.content, served.row
        if values is not None and models.hybrid is not None:
            model, row = models.hybrid, replace(row, llm=values)
        settings = self.settings
        log_score, heads, steering, row = limited(model, row, settings.steering_limit_log, runs=settings.steering_runs)
        manifest = model.manifest_
        assert manifest is not None  # a loaded model always has one
        prediction = Prediction(
            prediction_id=uuid.uuid4().hex,
            score=float(to_score(log_score)),
            log_score=log_score,
            **(manifest.intervals.fields(log_score, heads) if manifest.intervals is not None else {}),
            p_top=heads.get(P_TOP),
            model_version=manifest.version,
            latency_ms=(time.perf_counter() - started) * 1000,
            llm_latency_ms=call.latency_ms,
            llm_tokens=call.tokens,
            llm_cost_usd=call.cost_usd,
            cache_hit=call.cache_hit,
            llm_called=call.called,
            llm_failure=call.failure,
            fallback=reason is not None,
            fallback_reason=reason,
            steered=steering is not None,
            steering=steering,
            flair_read_as=model.flair_read_as(served.row.flair),
            **(_explanation(model.score(row, heads=False, contributions=True).contributions_of()) if explain else {}),
        )
        return prediction, self.log.write(log_record(row, prediction, call, caller))

    def predict_batch(
        self, posts: list[dict[str, Any]], explain: bool = False, caller: str = "local"
    ) -> list[Prediction | PredictionInputError]:
        """Score many posts; an invalid post yields its PredictionInputError in place, not an exception."""
        out: list[Prediction | PredictionInputError] = []
        for post in posts:
            try:
                out.append(self.predict(post, explain, caller))
            except PredictionInputError as exc:
                out.append(exc)
        return out

    def successor(self) -> Predictor:
        """A predictor for the same model path and settings, loaded afresh (a new release, a moved alias)
        and sharing this one's log and spend: what a reload swaps in."""
        return Predictor(
            self.model_ref,
            self.settings,
            llm=self.llm,
            llm_budget_ms=self.llm_budget_ms,
            log=self.log,
            spend=self.spend,
        )

    def close(self) -> None:
        """Finish the prediction log (every line reaches the file) and stop the LLM queue."""
        self.log.close()
        if self._models is not None:
            self._models.close()


def log_record(row: PostRow, prediction: Prediction, call: LLMCall, caller: str) -> dict[str, Any]:
    """The prediction log's line: the prediction, who asked (an API key's id, never the key) and the
    post's signals that `hybrid-scorer monitor` compares with the training posts."""
    features = {
        "title_chars": len(row.title_clean),
        "body_chars": len(row.body_clean),
        "flair": normalize_flair(row.flair) if row.flair is not None else "unknown",
        "llm_out_of_range": call.failure == LLMFailure.VALIDATION,
    }
    features.update({c: row.llm[c] for c in SIGNAL_COLUMNS if c in row.llm})
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        **prediction.model_dump(exclude={"contributions", "drivers", "p_top_words", "llm_failure_words"}),
        "log_prediction": prediction.log_score,
        "caller": caller,
        "features": features,
    }


def _explanation(contributions: dict[str, float]) -> dict[str, Any]:
    """The groups' shares as the model gives them, and as drivers in a poster's words, largest first."""
    groups = sorted((g for g in contributions if g != "bias"), key=lambda g: -abs(contributions[g]))
    drivers = [Driver(group=g, reads_as=group_class(g).reads_as, effect_log=contributions[g]) for g in groups]
    return {"contributions": contributions, "drivers": drivers}


def validate_post(post: object) -> PostInput:
    if isinstance(post, PostInput):
        return post
    if not isinstance(post, dict):
        raise PredictionInputError(f"a post must be a dict with a 'title', got {type(post).__name__}")
    try:
        return PostInput.model_validate(post)
    except ValidationError as exc:
        raise PredictionInputError.from_validation(exc) from exc


_default: Predictor | None = None
_default_lock = threading.Lock()


def default_predictor() -> Predictor:
    global _default
    with _default_lock:
        if _default is None:
            _default = Predictor()
        return _default


def predict(post: dict[str, Any]) -> Prediction:
    """Score one post ({'title': ..., 'body': ...}, optional 'flair', 'created_utc') with models/current."""
    return default_predictor().predict(post)
