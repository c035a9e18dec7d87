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
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybrid_scorer.errors import StoreUnavailableError
from hybrid_scorer.outcomes import Feedback
from hybrid_scorer.roles import Role
from hybrid_scorer.serving.access import ApiKeys, TokenBuckets, retry_after
from hybrid_scorer.serving.metrics import ServiceMetrics
from hybrid_scorer.serving.predictor import Predictor
from hybrid_scorer.serving.schemas import (
    FeedbackAccepted,
    FeedbackBatch,
    FeedbackInput,
    PostInput,
    Prediction,
    Problem,
    Readiness,
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


class Flairs(BaseModel):
    flairs: list[str] = Field(description="the flairs the served model was trained on (normalized, lowercase)")


PAGE = Path(str(resources.files("hybrid_scorer.serving") / "page"))  # the page at /, package data


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
        for role, model in ((Role.HYBRID, predictor.hybrid), (Role.CONTENT, predictor.content)):
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
        # the old predictor is not shut down: requests in flight may still call its LLM; it (and its model)
        # is freed when the last of them lets go of it
        self._serving(successor)
        self.metrics.reloads.labels("success").inc()
        log.warning("reloaded: now serving %s", successor.model_dir)

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


async def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


State = Annotated[ServiceState, Depends(service_state)]


async def require_ready(state: State) -> None:
    if not state.ready:
        raise HTTPException(503, f"not ready: {state.reason}", headers={"retry-after": "5"})


API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="required when the service has API keys")
Presented = Annotated[str | None, Security(API_KEY)]


def _caller(state: ServiceState, presented: str | None) -> str:
    """The caller's key id ("anonymous" when the service has no keys); 401 for a missing or invalid key."""
    if state.keys is None:
        return "anonymous"
    key_id = state.keys.identify(presented)
    state.metrics.requests_by_key.labels(key_id or "invalid").inc()
    if key_id is None:
        raise HTTPException(
            401, "missing or invalid API key: send it as X-API-Key", headers={"www-authenticate": "ApiKey"}
        )
    return key_id


async def authorize(request: Request, state: State, presented: Presented = None) -> str:
    """The caller, admitted by its key and its token bucket (429 with Retry-After when it is empty)."""
    key_id = _caller(state, presented)
    if state.buckets is not None:
        address = request.client.host if request.client else "?"
        wait_s = state.buckets.take(key_id if state.keys is not None else f"address:{address}")
        if wait_s is not None:
            limit = f"rate limit of {state.buckets.rate:g} requests/s reached"
            raise HTTPException(429, limit, headers={"retry-after": retry_after(wait_s)})
    return key_id


async def metrics_access(state: State, presented: Presented = None) -> None:
    if state.predictor.settings.metrics_require_key:
        _caller(state, presented)


Caller = Annotated[str, Depends(authorize)]
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
probes = APIRouter()
scoring = APIRouter(dependencies=[Depends(require_ready), Depends(authorize)], responses=ERRORS)


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the model)."""
    return {"status": "ok"}


@probes.get("/readyz", responses={503: ERRORS[503]})
async def readyz(state: State) -> Readiness:
    """Models loaded and the LLM warmed and checked against the model's manifest. A backlog of predictions
    waiting for the outcome store is reported, not a reason to stop scoring."""
    await require_ready(state)
    return Readiness(status="ready", store_backlog=state.predictor.recorder.backlog)


@probes.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(metrics_access)],
    responses={200: {"content": {"text/plain": {}}}, 401: ERRORS[401]},
)
async def prometheus(state: State) -> PlainTextResponse:
    """Prometheus metrics in the text exposition format."""
    return PlainTextResponse(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@probes.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """A page to score a draft post in the browser (serving/page: HTML, CSS and a little JavaScript)."""
    return FileResponse(PAGE / "index.html")


@scoring.get("/v1/flairs")
def flairs(state: State) -> Flairs:
    """The flairs a post can be given (the served model's; none for a model without the meta group)."""
    served = state.predictor.hybrid or state.predictor.content
    return Flairs(flairs=served.flairs() if served is not None else [])


@scoring.get("/v1/model")
def model(state: State) -> dict[str, Any]:
    """The served models' manifests: version, feature groups, LLM, prompt version, CV metrics."""
    predictor = state.predictor
    return {
        role: {"version": Predictor.version(m), **m.manifest_.model_dump(mode="json", exclude={"params"})}
        for role, m in ((Role.HYBRID, predictor.hybrid), (Role.CONTENT, predictor.content))
        if m is not None and m.manifest_ is not None
    }


@scoring.post("/v1/predict", responses=BODY_ERRORS)
async def predict(
    post: PostInput,
    state: State,
    caller: Caller,
    explain: bool = Query(False, description="add contributions by feature group"),
) -> Prediction:
    """Score one post. Without a flair, the post is scored as of unknown flair."""
    return state.observed(await state.predictor.predict_async(post, explain=explain, caller=caller))


@scoring.post("/v1/predict/batch", responses=BODY_ERRORS)
def predict_batch(batch: BatchRequest, state: State, caller: Caller, explain: bool = False) -> BatchResponse:
    """Score up to `max_batch` posts; an invalid post gets its error in place, the others are scored."""
    if len(batch.posts) > state.max_batch:
        raise HTTPException(422, f"at most {state.max_batch} posts per batch, got {len(batch.posts)}")
    results = state.predictor.predict_batch(batch.posts, explain, caller=caller)
    return BatchResponse(
        results=[
            BatchItem(prediction=state.observed(r)) if isinstance(r, Prediction) else BatchItem(error=str(r))
            for r in results
        ]
    )


@scoring.post("/v1/feedback", responses=BODY_ERRORS)
def feedback(item: FeedbackInput, state: State) -> FeedbackAccepted:
    """The realised score of a prediction this service made (its `prediction_id`), for realised quality."""
    return state.feedback([item])


@scoring.post("/v1/feedback/batch", responses=BODY_ERRORS)
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


class InFlightLimit:
    """At most `max_in_flight` /v1/ requests at once; beyond, 503 with Retry-After at once, so a flood
    turns into fast refusals instead of a queue that grows."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            body = {"detail": f"{self.in_flight} requests in flight, the most this service takes: retry shortly"}
            await JSONResponse(body, status_code=503, headers={"retry-after": "1"})(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


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


def _open_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema of a service without API keys: the key header and the 401 left out."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.get("components", {}).pop("securitySchemes", None)
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation.pop("security", None)
                operation.get("responses", {}).pop("401", None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(predictor: Predictor, threads: int = 4) -> FastAPI:
    """The service around one predictor (already configured; loaded and warmed at startup); limits and
    keys from its settings."""
    settings = predictor.settings
    state = ServiceState(
        predictor,
        ServiceMetrics(lambda: state.predictor),
        settings.serve_max_batch,
        ApiKeys.parse(settings.api_keys),
        TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst) if settings.rate_limit_per_s else None,
    )

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
    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    app.add_middleware(BodySizeLimit, max_bytes=settings.serve_max_body_bytes)
    app.add_middleware(InFlightLimit, max_in_flight=settings.serve_max_in_flight)
    app.add_middleware(RequestMetrics, metrics=state.metrics)

    if state.keys is None:  # an open service: its schema must not ask callers for a key
        app.openapi = partial(_open_schema, app)  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]} for e in exc.errors()]
        if request.url.path == "/v1/predict":
            return JSONResponse({"detail": describe_errors(errors)}, status_code=422)
        return JSONResponse({"detail": describe_errors(errors, "request", None)}, status_code=422)

    return app
