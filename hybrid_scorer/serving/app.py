"""The HTTP service: FastAPI around `Predictor`, with health, readiness, the model's manifest and
Prometheus metrics. Request and response bodies are the pydantic models `predict()` uses, so the OpenAPI
schema and the Python API cannot drift apart.

Run it with `hybrid-scorer serve` (uvicorn, one worker: see serving/metrics.py for why)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from hybrid_scorer.serving.metrics import ServiceMetrics
from hybrid_scorer.serving.predictor import Predictor
from hybrid_scorer.serving.schemas import PostInput, Prediction, PredictionInputError, describe_errors
from hybrid_scorer.version import __version__

log = logging.getLogger(__name__)


class BatchRequest(BaseModel):
    posts: list[dict[str, Any]] = Field(description="posts shaped like PostInput; each is validated on its own")


class BatchItem(BaseModel):
    prediction: Prediction | None = None
    error: str | None = Field(default=None, description="why this post could not be scored (names the field)")


class BatchResponse(BaseModel):
    results: list[BatchItem]


class Readiness:
    """Loading and warming happen in the background after start; /readyz says 503 until they are done."""

    def __init__(self) -> None:
        self.ready = False
        self.reason = "loading the models and warming the LLM"


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


def create_app(predictor: Predictor, max_batch: int = 64, max_body_bytes: int = 2_000_000, threads: int = 4) -> FastAPI:
    """The service around one predictor (already configured; loaded and warmed at startup)."""
    metrics = ServiceMetrics()
    readiness = Readiness()

    def warm() -> None:
        try:
            predictor.warm()
        except Exception as exc:  # reported by /readyz; the process stays up so the reason can be read
            readiness.reason = f"{type(exc).__name__}: {exc}"
            log.error("the service is not ready: %s", readiness.reason)
            return
        for role, model in (("hybrid", predictor.hybrid), ("content", predictor.content)):
            if model is not None and model.manifest_ is not None:
                labels = (
                    Predictor.version(model),
                    model.manifest_.llm_model or "none",
                    model.manifest_.prompt_version or "none",
                )
                metrics.model_info.labels(role, *labels).set(1)
        readiness.ready, readiness.reason = True, "ready"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Scoring is CPU-bound Python: a few threads keep the cores busy, forty only fight over the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        task = asyncio.create_task(asyncio.to_thread(warm))
        yield
        task.cancel()

    app = FastAPI(title="hybrid-scorer", version=__version__, lifespan=lifespan, description=__doc__)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        metrics.in_flight.inc()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.in_flight.dec()
            route = getattr(request.scope.get("route"), "path", "unmatched")
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.request_seconds.labels(route, request.method).observe(time.perf_counter() - started)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]} for e in exc.errors()]
        return JSONResponse({"detail": describe_errors(errors)}, status_code=422)

    def require_ready() -> JSONResponse | None:
        if readiness.ready:
            return None
        return JSONResponse({"detail": f"not ready: {readiness.reason}"}, status_code=503, headers={"retry-after": "5"})

    def scored(post: PostInput | dict[str, Any], explain: bool) -> Prediction:
        prediction = predictor.predict(post, explain=explain)
        metrics.observe_prediction(
            prediction, "hybrid" if prediction.llm_called and not prediction.fallback else "content"
        )
        return prediction

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is alive (says nothing about the model)."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "still loading, or the model and LLM do not fit together"}})
    def readyz() -> Response:
        """Models loaded and the LLM warmed and checked against the model's manifest."""
        return require_ready() or JSONResponse({"status": "ready"})

    @app.get("/v1/model")
    def model() -> Response:
        """The served models' manifests: version, feature groups, LLM, prompt version, CV metrics."""
        manifests = {
            role: {"version": Predictor.version(m), **m.manifest_.model_dump(mode="json", exclude={"params"})}
            for role, m in (("hybrid", predictor.hybrid), ("content", predictor.content))
            if m is not None and m.manifest_ is not None
        }
        return require_ready() or JSONResponse(manifests)

    @app.post("/v1/predict", response_model=Prediction, responses={422: {"description": "names the bad field"}})
    def predict(
        post: PostInput, explain: bool = Query(False, description="add contributions by feature group")
    ) -> Response | Prediction:
        """Score one post. Without a flair, the post is scored as of unknown flair."""
        return require_ready() or scored(post, explain)

    @app.post("/v1/predict/batch", response_model=BatchResponse)
    def predict_batch(batch: BatchRequest, explain: bool = False) -> Response | BatchResponse:
        """Score up to `max_batch` posts; an invalid post gets its error in place, the others are scored."""
        if (not_ready := require_ready()) is not None:
            return not_ready
        if len(batch.posts) > max_batch:
            return JSONResponse({"detail": f"at most {max_batch} posts per batch, got {len(batch.posts)}"}, 422)
        results = []
        for post in batch.posts:
            try:
                results.append(BatchItem(prediction=scored(post, explain)))
            except PredictionInputError as exc:
                results.append(BatchItem(error=str(exc)))
        return BatchResponse(results=results)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.state.metrics = metrics
    app.state.readiness = readiness
    return app
