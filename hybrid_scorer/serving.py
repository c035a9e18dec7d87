"""Simulated deployment: `predict(post)` with validation, LLM latency budget, fallback and a log.

The hybrid model needs the LLM's outputs for the post. If the LLM fails, or does not answer within
the latency budget, the content model (trained without LLM features, saved next to the hybrid)
scores the post instead and the prediction says so (`fallback=True`). Every prediction is one JSON
line in a size-bounded, rotating log that `hybrid-scorer monitor` reads."""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from hybrid_scorer.config import Settings
from hybrid_scorer.data import clean
from hybrid_scorer.features.llm import attach_llm_columns
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.extract import assessment_row, post_texts
from hybrid_scorer.llm.usage import cost_usd
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import client_for, needs_llm

log = logging.getLogger(__name__)
MAX_TITLE_CHARS = 300  # reddit's own limit
MAX_BODY_CHARS = 40_000  # reddit's self-post limit


class PostInput(BaseModel):
    """One post to score. Unknown fields are rejected, so a typo ('titel') is an error, not a silent NaN."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: StrictStr = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    body: StrictStr = Field(default="", max_length=MAX_BODY_CHARS)
    flair: StrictStr | None = Field(default=None, max_length=100)
    created_utc: datetime | None = None

    @field_validator("created_utc")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class PredictionInputError(ValueError):
    """Bad input; the message names each offending field and what it should be."""

    @classmethod
    def from_validation(cls, exc: ValidationError) -> PredictionInputError:
        problems = [f"'{'.'.join(str(p) for p in e['loc']) or 'post'}': {e['msg']}" for e in exc.errors()]
        return cls(
            "invalid post: " + "; ".join(problems) + " (expected {'title': non-empty str, 'body': str,"
            " optional 'flair': str, optional 'created_utc': ISO datetime})"
        )


class Prediction(BaseModel):
    score: float
    log_score: float
    model_version: str
    latency_ms: float
    llm_latency_ms: float = 0.0
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0
    cache_hit: bool = False
    fallback: bool = False
    fallback_reason: str | None = None


def _post_frame(post: PostInput) -> pd.DataFrame:
    created = post.created_utc or datetime.now(UTC)
    post_id = "live-" + hashlib.sha256(f"{post.title}\x00{post.body}".encode()).hexdigest()[:12]
    frame = pd.DataFrame(
        [
            {
                "post_id": post_id,
                "title": post.title,
                "body": post.body,
                "flair": post.flair or "",
                "created_utc": pd.Timestamp(created),
                "score": np.nan,
            }
        ]
    )
    return clean(frame)


@dataclass
class LLMCall:
    """What the LLM did for one prediction (filled in as it happens, so a failure is still recorded)."""

    called: bool = False
    latency_ms: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    failure: str | None = None  # timeout | validation | transient | error


class PredictionLog:
    """JSON lines, rotated at `max_bytes` with 3 backups, so the log never grows without bound."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._logger = logging.getLogger(f"hybrid_scorer.predictions.{path.resolve()}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        if not self._logger.handlers:
            handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=3)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def write(self, record: dict[str, Any]) -> None:
        self._logger.info(json.dumps(record, default=str))


class Predictor:
    """Loads the trained models once (lazily, thread-safe) and scores posts."""

    def __init__(
        self,
        model_dir: Path | None = None,
        llm: str | None = None,
        settings: Settings | None = None,
        log_path: Path | None = None,
        llm_budget_ms: float | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.model_dir = Path(model_dir or self.settings.model_dir)
        self.llm_override = llm
        self.llm_budget_ms = llm_budget_ms if llm_budget_ms is not None else self.settings.predict_llm_budget_ms
        self.log = PredictionLog(
            Path(log_path or self.settings.log_dir / "predictions.jsonl"), self.settings.prediction_log_max_bytes
        )
        self._lock = threading.Lock()
        self._loaded = False
        self.hybrid: HybridScorer | None = None
        self.content: HybridScorer | None = None
        self.client: LLMClient | None = None
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="llm")

    def load(self) -> Predictor:
        with self._lock:
            if self._loaded:
                return self
            hybrid_dir, content_dir = self.model_dir / "hybrid", self.model_dir / "content"
            if not content_dir.is_dir():
                raise FileNotFoundError(
                    f"no trained model in {self.model_dir}: run `make run` or `hybrid-scorer train` first"
                )
            self.content = HybridScorer.load(content_dir)
            if hybrid_dir.is_dir():
                self.hybrid = HybridScorer.load(hybrid_dir)
                spec = self.llm_override or (self.hybrid.manifest_.llm_spec if self.hybrid.manifest_ else None)
                self.client = client_for(spec, self.settings)
            self._loaded = True
        return self

    @staticmethod
    def _version(model: HybridScorer) -> str:
        manifest = model.manifest_
        return f"{'+'.join(manifest.feature_groups)}@{manifest.training_data_hash[:10]}" if manifest else "unknown"

    def _llm_columns(self, frame: pd.DataFrame, model: HybridScorer, call: LLMCall) -> pd.DataFrame:
        """Run the LLM calls the hybrid needs under the latency budget, recording them in `call`;
        raises on failure or timeout (after recording the failure kind)."""
        want_ratings, want_embedding = needs_llm(model.groups)
        client = self.client
        assert client is not None
        text = post_texts(frame)[0]
        started = time.perf_counter()
        assess = self._executor.submit(client.assess, text) if want_ratings else None
        embed = self._executor.submit(client.embed, text) if want_embedding else None
        budget_s = self.llm_budget_ms / 1000.0
        try:
            assessment = assess.result(timeout=budget_s) if assess else None
            remaining = max(budget_s - (time.perf_counter() - started), 0.0)
            embedding = embed.result(timeout=remaining) if embed else None
        except FutureTimeout as exc:
            call.failure = "timeout"
            raise TimeoutError(f"LLM exceeded the {self.llm_budget_ms:.0f} ms budget") from exc
        finally:
            call.latency_ms = (time.perf_counter() - started) * 1000
        usages = [r.usage for r in (assessment, embedding) if r is not None]
        live = [u for u in usages if not u.cache_hit]
        call.tokens = sum(u.prompt_tokens + u.completion_tokens for u in live)
        call.cost_usd = cost_usd(live, client.ledger.price_per_million)
        call.cache_hit = all(u.cache_hit for u in usages)
        errors = [r.error for r in (assessment, embedding) if r is not None and r.error]
        if errors:
            call.failure = next((u.failure for u in usages if u.failure), "error")
            raise RuntimeError(f"LLM failed: {errors[0]}")
        table = pd.DataFrame([assessment_row(assessment)]) if assessment else None
        vectors = {embedding.post_id: embedding.vector} if embedding and embedding.vector is not None else None
        return attach_llm_columns(frame, table, vectors)

    def predict(self, post: dict[str, Any] | PostInput) -> Prediction:
        started = time.perf_counter()
        if not isinstance(post, dict | PostInput):
            raise PredictionInputError(f"a post must be a dict with a 'title', got {type(post).__name__}")
        try:
            valid = post if isinstance(post, PostInput) else PostInput.model_validate(post)
        except ValidationError as exc:
            raise PredictionInputError.from_validation(exc) from exc
        self.load()
        frame = _post_frame(valid)
        model, call, reason = self.content, LLMCall(), None
        if self.hybrid is not None and self.client is not None:
            call.called = True
            try:
                frame = self._llm_columns(frame, self.hybrid, call)
                model = self.hybrid
            except Exception as exc:  # the LLM is optional at serving time: fall back, never crash
                reason = f"{type(exc).__name__}: {exc}"[:300]
                call.failure = call.failure or "error"
                log.warning("falling back to the content model: %s", reason)
        assert model is not None
        log_score = float(model.predict_log(frame)[0])
        prediction = Prediction(
            score=float(max(np.expm1(log_score), 0.0)),
            log_score=log_score,
            model_version=self._version(model),
            latency_ms=(time.perf_counter() - started) * 1000,
            llm_latency_ms=call.latency_ms,
            llm_tokens=call.tokens,
            llm_cost_usd=call.cost_usd,
            cache_hit=call.cache_hit,
            fallback=reason is not None,
            fallback_reason=reason,
        )
        self._log(frame, prediction, call)
        return prediction

    def predict_batch(self, posts: list[dict[str, Any]]) -> list[Prediction | PredictionInputError]:
        """Score many posts; an invalid post yields its PredictionInputError in place, not an exception."""
        out: list[Prediction | PredictionInputError] = []
        for post in posts:
            try:
                out.append(self.predict(post))
            except PredictionInputError as exc:
                out.append(exc)
        return out

    def _log(self, frame: pd.DataFrame, prediction: Prediction, call: LLMCall) -> None:
        row = frame.iloc[0]
        features = {
            "title_chars": len(row["title_clean"]),
            "body_chars": len(row["body_clean"]),
            "flair": normalize_flair(row["flair"]),
            "llm_out_of_range": call.failure == "validation",
        }
        for column in ("llm_topic", "llm_predicted_interest_expected", "llm_question_clarity_expected"):
            if column in frame:
                features[column] = row[column]
        self.log.write(
            {
                "timestamp": datetime.now(UTC).isoformat(),
                **prediction.model_dump(),
                "log_prediction": prediction.log_score,
                "llm_called": call.called,
                "llm_failure": call.failure,
                "features": features,
            }
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
