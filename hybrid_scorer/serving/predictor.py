"""`predict(post)`: validation, the LLM's outputs under the service's limits, fallback, and a log.

The hybrid model needs the LLM's outputs for the post (llm_features.py gets them within the latency
budget, the queue's bound and the spend limit). If the LLM cannot give them, the content model (trained
without LLM features, saved next to the hybrid) scores the post instead and the prediction says so
(`fallback=True`, with the reason). Anything else that goes wrong is a bug and raises. Every prediction
is one JSON line in a size-bounded, rotating log that `hybrid-scorer monitor` reads (predictlog.py), and
a record in the outcome store that delayed labels join."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from pydantic import ValidationError

from hybrid_scorer.config import Settings
from hybrid_scorer.data import clean_fields
from hybrid_scorer.errors import MissingArtifactError, ModelMismatchError
from hybrid_scorer.features.base import PostRow
from hybrid_scorer.features.matrix import group_class, llm_needs
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.intervals import LEVELS, interval_field
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.identity import LLMIdentity
from hybrid_scorer.llm.prompts import PostText
from hybrid_scorer.llm.usage import LLMFailure, UsageLedger
from hybrid_scorer.model import P_TOP, HybridScorer
from hybrid_scorer.monitoring import SIGNAL_COLUMNS
from hybrid_scorer.outcomes import OutcomeStore, store_url
from hybrid_scorer.pipeline import client_for
from hybrid_scorer.registry import resolve_model_dir
from hybrid_scorer.roles import Role
from hybrid_scorer.serving.llm_features import LLMCall, LLMFeatures, LLMUnavailableError
from hybrid_scorer.serving.llm_queue import LLMQueue
from hybrid_scorer.serving.predictlog import PredictionLog
from hybrid_scorer.serving.recorder import Recorder
from hybrid_scorer.serving.schemas import Driver, PostInput, Prediction, PredictionInputError
from hybrid_scorer.serving.spend import SpendLimit
from hybrid_scorer.steering import limited
from hybrid_scorer.target import to_score

log = logging.getLogger(__name__)
LEDGER_KEEP = 10_000


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
    """Loads the trained models once (thread-safe) and scores posts.

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
        writing its log and counting its spend."""
        self.settings = settings or Settings()
        self.model_ref = model_dir or self.settings.model_dir  # a directory or models:/hybrid-scorer@champion
        self.model_dir: Path | None = None  # where the loaded models are (resolved at load)
        self.llm = llm
        self.client = client
        self.llm_budget_ms = llm_budget_ms if llm_budget_ms is not None else self.settings.predict_llm_budget_ms
        if log is None:
            path = Path(log_path or self.settings.log_path)
            store = OutcomeStore(store_url(self.settings.database_url, path))
            recorder = Recorder(store, self.settings.database_backlog_max)
            log = PredictionLog(
                path,
                self.settings.prediction_log_max_bytes,
                recorder,
                answer_after_record=self.settings.answers_after_record,
            )
        assert log.recorder is not None
        self.log, self.recorder, self.outcomes = log, log.recorder, log.recorder.store
        self.spend = spend or SpendLimit(self.settings.llm_max_usd_per_hour, self.settings.llm_max_usd_per_day)
        self._lock = threading.Lock()
        self._loaded = False
        self.hybrid: HybridScorer | None = None
        self.content: HybridScorer | None = None
        self.llm_features: LLMFeatures | None = None  # with the hybrid: its LLM outputs under the limits

    def load(self) -> Predictor:
        """Load both models and the LLM client, and check they belong together (idempotent)."""
        with self._lock:
            if self._loaded:
                return self
            # resolved once: a release published while this loads cannot mix two trainings (releases.py)
            model_dir = self.model_dir = resolve_model_dir(self.model_ref).resolve()
            content_dir, hybrid_dir = model_dir / Role.CONTENT, model_dir / Role.HYBRID
            if not content_dir.is_dir():
                raise MissingArtifactError(
                    f"no trained model in {model_dir}: run `make run` or `hybrid-scorer train` first"
                )
            self.content = HybridScorer.load(content_dir)
            if hybrid_dir.is_dir() and self.llm != "none":
                hybrid = HybridScorer.load(hybrid_dir)
                manifest = hybrid.manifest_
                assert manifest is not None  # load() always reads one
                # the embedder the model was trained with, unless the settings name one
                settings = self.settings.model_copy(
                    update={"embedder": self.settings.embedder or manifest.embedder_spec}
                )
                self.client = self.client or client_for(self.llm or manifest.llm_spec, settings)
                if self.client is not None:
                    check_client(hybrid, self.client)
                    # a service runs for weeks: its ledger keeps the recent calls, not every one
                    ledger = self.client.ledger
                    self.client.ledger = UsageLedger(ledger.backend, ledger.prices, keep=LEDGER_KEEP)
                    self.hybrid = hybrid
                    workers = self.client.backend.max_concurrency or self.settings.llm_concurrency
                    queue = LLMQueue(workers, self.llm_budget_ms)
                    needs = llm_needs(hybrid.groups)
                    self.llm_features = LLMFeatures(self.client, needs, queue, self.spend, self.llm_budget_ms)
            self._loaded = True
        return self

    def warm(self) -> Predictor:
        """Load everything, including the LLM itself, and check its embedding width: after this the
        first request is served like any other (nothing loads inside its latency budget)."""
        self.load()
        if self.hybrid is not None and self.llm_features is not None:
            self.llm_features.warm(self.hybrid.embedding_width())
        return self

    @staticmethod
    def version(model: HybridScorer) -> str:
        manifest = model.manifest_
        return f"{'+'.join(manifest.feature_groups)}@{manifest.training_data_hash[:10]}" if manifest else "unknown"

    def predict(self, post: dict[str, Any] | PostInput, explain: bool = False, caller: str = "local") -> Prediction:
        """Score one post; `caller` (an API key id, or "local" in process) goes into the log."""
        scored = self._predict(post, explain, live=True, caller=caller)
        assert scored is not None  # live: the LLM is called when its outputs are not cached
        prediction, ticket = scored
        self.log.settled(ticket)
        return prediction

    async def predict_async(
        self, post: dict[str, Any] | PostInput, explain: bool = False, caller: str = "local"
    ) -> Prediction:
        """predict() for an event loop: scored inline when no LLM call is needed (the content model, or
        the LLM's outputs cached: well under a millisecond, which a hop to a worker thread would double),
        in a worker thread when the LLM must be called (that waits up to the latency budget)."""
        scored = self._predict(post, explain, live=False, caller=caller)
        if scored is None:
            return await anyio.to_thread.run_sync(self.predict, post, explain, caller)
        prediction, ticket = scored
        await self.log.settled_async(ticket)
        return prediction

    def _predict(
        self, post: dict[str, Any] | PostInput, explain: bool, live: bool, caller: str
    ) -> tuple[Prediction, int] | None:
        """The prediction and its log ticket; None when the LLM must be called and `live` is False."""
        started = time.perf_counter()
        served = ServedPost.of(validate_post(post))
        self.load()
        model, call, reason = self.content, LLMCall(), None
        if self.hybrid is not None and self.llm_features is not None:
            call.called = True
            try:
                values = self.llm_features.values(served.text, call, live)
                if values is None:
                    return None
                served = replace(served, row=replace(served.row, llm=values))
                model = self.hybrid
            except LLMUnavailableError as exc:
                reason = f"{exc.failure}: {exc}"[:300]
                log.info("falling back to the content model: %s", reason)
        assert model is not None
        log_score, heads, steering, row = limited(model, served.row, self.settings.steering_limit_log)
        served = replace(served, row=row)
        prediction = Prediction(
            prediction_id=uuid.uuid4().hex,
            score=float(to_score(log_score)),
            log_score=log_score,
            **_intervals(model, log_score, heads),
            p_top=heads.get(P_TOP),
            model_version=self.version(model),
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
            **(_explanation(model.contributions_row(served.row)) if explain else {}),
        )
        return prediction, self._log(served.row, prediction, call, caller)

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

    def _log(self, row: PostRow, prediction: Prediction, call: LLMCall, caller: str) -> int:
        features = {
            "title_chars": len(row.title_clean),
            "body_chars": len(row.body_clean),
            "flair": normalize_flair(row.flair) if row.flair is not None else "unknown",
            "llm_out_of_range": call.failure == LLMFailure.VALIDATION,
        }
        features.update({c: row.llm[c] for c in SIGNAL_COLUMNS if c in row.llm})
        return self.log.write(
            {
                "timestamp": datetime.now(UTC).isoformat(),
                **prediction.model_dump(exclude={"contributions", "drivers", "p_top_words", "llm_failure_words"}),
                "log_prediction": prediction.log_score,
                "caller": caller,  # the API key's id, never the key
                "features": features,
            }
        )

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
        if self.llm_features is not None:
            self.llm_features.close()


def _explanation(contributions: dict[str, float]) -> dict[str, Any]:
    """The groups' shares as the model gives them, and as drivers in a poster's words, largest first."""
    groups = sorted((g for g in contributions if g != "bias"), key=lambda g: -abs(contributions[g]))
    drivers = [Driver(group=g, reads_as=group_class(g).reads_as, effect_log=contributions[g]) for g in groups]
    return {"contributions": contributions, "drivers": drivers}


def _intervals(model: HybridScorer, log_score: float, heads: dict[str, float]) -> dict[str, tuple[float, float]]:
    """The served model's intervals at each level, in score units (none for a model trained before them)."""
    intervals = model.manifest_.intervals if model.manifest_ is not None else None
    if intervals is None:
        return {}
    point, values = np.array([log_score]), {h: np.array([v]) for h, v in heads.items()}
    out = {}
    for level in LEVELS:
        low, high = intervals.bounds(point, values, level)
        out[interval_field(level)] = (round(float(low[0]), 1), round(float(high[0]), 1))
    return out


def validate_post(post: object) -> PostInput:
    if isinstance(post, PostInput):
        return post
    if not isinstance(post, dict):
        raise PredictionInputError(f"a post must be a dict with a 'title', got {type(post).__name__}")
    try:
        return PostInput.model_validate(post)
    except ValidationError as exc:
        raise PredictionInputError.from_validation(exc) from exc


def check_client(model: HybridScorer, client: LLMClient) -> None:
    """Refuse to serve a hybrid with an LLM setup other than the one it was trained with (its columns
    would mean something else): same backend and model, same embedder, same prompt text."""
    trained = LLMIdentity.from_manifest(model.manifest_) if model.manifest_ is not None else None
    if trained is None:
        raise ModelMismatchError("the hybrid model records no LLM: retrain it with `hybrid-scorer train --llm <spec>`")
    problems = trained.mismatches(LLMIdentity.from_client(client, None, None))
    if problems:
        raise ModelMismatchError(
            "; ".join(problems) + f": serve with --llm {trained.llm_spec or '?'} (and the prompt it was trained"
            " with), or retrain with `hybrid-scorer train --llm <spec>`"
        )


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
