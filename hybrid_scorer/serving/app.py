"""The HTTP service: FastAPI around `Predictor`, with health, readiness, the model's manifest and
Prometheus metrics. Request and response bodies are the pydantic models `predict()` uses, so the OpenAPI
schema and the Python API cannot drift apart.

Routes live on two module-level routers: `probes` (liveness, readiness, metrics: always open) and
`scoring`, whose every route depends on readiness, so a route added there cannot forget it. The predictor
and the service state reach the routes through `Depends`, read from `app.state`. Responses are
serialized by FastAPI from their declared models (pydantic's Rust serializer); metrics are counted by a
pure ASGI middleware, which costs a request far less than Starlette's BaseHTTPMiddleware.

Run it with `hybrid-scorer serve` (uvicorn, one worker: see serving/metrics.py for why)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybrid_scorer.outcomes import Feedback
from hybrid_scorer.serving.metrics import ServiceMetrics
from hybrid_scorer.serving.predictor import Predictor
from hybrid_scorer.serving.schemas import (
    FeedbackAccepted,
    FeedbackBatch,
    FeedbackInput,
    PostInput,
    Prediction,
    describe_errors,
)
from hybrid_scorer.version import __version__

log = logging.getLogger(__name__)


class BatchRequest(BaseModel):
    posts: list[dict[str, Any]] = Field(description="posts shaped like PostInput; each is validated on its own")


class BatchItem(BaseModel):
    prediction: Prediction | None = None
    error: str | None = Field(default=None, description="why this post could not be scored (names the field)")


class BatchResponse(BaseModel):
    results: list[BatchItem]


@dataclass
class ServiceState:
    """What the routes share: the predictor, its metrics, the limits, and whether it is ready yet
    (loading and warming happen in the background after start; /readyz says 503 until they are done)."""

    predictor: Predictor
    metrics: ServiceMetrics
    max_batch: int
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
        for role, model in (("hybrid", predictor.hybrid), ("content", predictor.content)):
            if model is not None and model.manifest_ is not None:
                labels = (
                    Predictor.version(model),
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
            log.error("reload failed, still serving %s: %s: %s", self.predictor.model_dir, type(exc).__name__, exc)
            return
        finally:
            self.reloading = False
        old = self.predictor
        self._serving(successor)
        old.retire()
        self.metrics.reloads.labels("success").inc()
        log.warning("reloaded: now serving %s", successor.model_dir)

    def feedback(self, items: list[FeedbackInput]) -> FeedbackAccepted:
        now = datetime.now(UTC)
        accepted = self.predictor.outcomes.add_feedback(
            Feedback(i.prediction_id, i.score, i.observed_at or now) for i in items
        )
        self.metrics.feedback.inc(accepted)
        return FeedbackAccepted(accepted=accepted)

    def observed(self, prediction: Prediction) -> Prediction:
        role = "hybrid" if prediction.llm_called and not prediction.fallback else "content"
        self.metrics.observe_prediction(prediction, role)
        return prediction


async def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


State = Annotated[ServiceState, Depends(service_state)]


async def require_ready(state: State) -> None:
    if not state.ready:
        raise HTTPException(503, f"not ready: {state.reason}", headers={"retry-after": "5"})


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "still loading, or the model and LLM do not fit together"}
}
probes = APIRouter()
scoring = APIRouter(dependencies=[Depends(require_ready)], responses=NOT_READY)


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the model)."""
    return {"status": "ok"}


@probes.get("/readyz", responses=NOT_READY)
async def readyz(state: State) -> dict[str, str]:
    """Models loaded and the LLM warmed and checked against the model's manifest."""
    await require_ready(state)
    return {"status": "ready"}


@probes.get("/metrics", response_class=PlainTextResponse)
async def prometheus(state: State) -> PlainTextResponse:
    """Prometheus metrics in the text exposition format."""
    return PlainTextResponse(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@scoring.get("/v1/model")
def model(state: State) -> dict[str, Any]:
    """The served models' manifests: version, feature groups, LLM, prompt version, CV metrics."""
    predictor = state.predictor
    return {
        role: {"version": Predictor.version(m), **m.manifest_.model_dump(mode="json", exclude={"params"})}
        for role, m in (("hybrid", predictor.hybrid), ("content", predictor.content))
        if m is not None and m.manifest_ is not None
    }


@scoring.post("/v1/predict", responses={422: {"description": "names the bad field"}})
async def predict(
    post: PostInput, state: State, explain: bool = Query(False, description="add contributions by feature group")
) -> Prediction:
    """Score one post. Without a flair, the post is scored as of unknown flair."""
    return state.observed(await state.predictor.predict_async(post, explain=explain))


@scoring.post("/v1/predict/batch")
def predict_batch(batch: BatchRequest, state: State, explain: bool = False) -> BatchResponse:
    """Score up to `max_batch` posts; an invalid post gets its error in place, the others are scored."""
    if len(batch.posts) > state.max_batch:
        raise HTTPException(422, f"at most {state.max_batch} posts per batch, got {len(batch.posts)}")
    results = state.predictor.predict_batch(batch.posts, explain)
    return BatchResponse(
        results=[
            BatchItem(prediction=state.observed(r)) if isinstance(r, Prediction) else BatchItem(error=str(r))
            for r in results
        ]
    )


@scoring.post("/v1/feedback")
def feedback(item: FeedbackInput, state: State) -> FeedbackAccepted:
    """The realised score of a prediction this service made (its `prediction_id`), for realised quality."""
    return state.feedback([item])


@scoring.post("/v1/feedback/batch")
def feedback_batch(batch: FeedbackBatch, state: State) -> FeedbackAccepted:
    """Up to 10,000 realised scores at once."""
    return state.feedback(batch.items)


class BodySizeLimit:
    """Refuse bodies over `max_bytes` (413) before reading them; POSTs must say their length (411)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length")
            status, message = None, ""
            if length is None:
                status, message = 411, "send a Content-Length header"
            elif int(length) > self.max_bytes:
                status, message = 413, f"request body of {int(length)} bytes exceeds the limit of {self.max_bytes}"
            if status is not None:
                await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestMetrics:
    """Requests by route and status, their latency and how many are in flight (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_flight.dec()
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(route, scope["method"]).observe(time.perf_counter() - started)


def create_app(predictor: Predictor, max_batch: int = 64, max_body_bytes: int = 2_000_000, threads: int = 4) -> FastAPI:
    """The service around one predictor (already configured; loaded and warmed at startup)."""
    state = ServiceState(predictor, ServiceMetrics(lambda: state.predictor), max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Scoring is CPU-bound Python: a few threads keep the cores busy, forty only fight over the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        task = asyncio.create_task(asyncio.to_thread(state.warm))
        reloads: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            reload = asyncio.ensure_future(state.reload())
            reloads.add(reload)
            reload.add_done_callback(reloads.discard)

        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
        yield
        task.cancel()
        state.predictor.close()  # the prediction log's last lines reach the file

    app = FastAPI(title="hybrid-scorer", version=__version__, lifespan=lifespan, description=__doc__)
    app.state.service = state
    app.include_router(probes)
    app.include_router(scoring)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=state.metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]} for e in exc.errors()]
        return JSONResponse({"detail": describe_errors(errors)}, status_code=422)

    return app
