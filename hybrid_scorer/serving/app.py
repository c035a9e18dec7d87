"""The HTTP service: FastAPI around `Predictor`, assembled from its pieces: the routes (routers/), what
they depend on (dependencies.py), the state they share (state.py), the middleware (middleware.py) and
the bodies (schemas.py). Here: the app itself, its lifespan (warm in the background, reload on SIGHUP,
close the log at exit), its OpenAPI schema and its answer to an invalid request.

Run it with `hybrid-scorer serve` (uvicorn, one worker: see serving/metrics.py for why)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from hybrid_scorer.serving.access import ApiKeys, TokenBuckets
from hybrid_scorer.serving.metrics import ServiceMetrics
from hybrid_scorer.serving.middleware import BodySizeLimit, InFlightLimit, RequestMetrics
from hybrid_scorer.serving.predictor import Predictor
from hybrid_scorer.serving.routers.probes import PAGE, probes
from hybrid_scorer.serving.routers.scoring import scoring
from hybrid_scorer.serving.schemas import POST_SHAPE, PostInput, describe_errors
from hybrid_scorer.serving.state import ServiceState
from hybrid_scorer.version import __version__

DESCRIPTION = (
    "Predicts the score of a draft r/askscience post from its title and body (flair and posting time"
    " optional): the score, 80% and 90% intervals, the chance of reaching 1,000 and, on request, what drove"
    " it. Send the realised score later to /v1/feedback to measure the served model's quality. The page at"
    " / does the same in a browser."
)


def _takes_a_post(route: Any) -> bool:
    """Whether the route's body is one post (PostInput), whatever its path."""
    body = getattr(route, "body_field", None)
    return getattr(getattr(body, "field_info", None), "annotation", None) is PostInput


def _unread_body(errors: Sequence[Any], content_type: str) -> str | None:
    """What is wrong with a body that could not be read as JSON at all (not valid JSON, absent, or sent as
    another media type), in words: its validation errors would name no field, or a position as one."""
    on_body = [e for e in errors if e["loc"][:1] == ("body",)]
    broken = next((e for e in on_body if e["type"] == "json_invalid"), None)
    if broken is not None:
        why = broken.get("ctx", {}).get("error", broken["msg"])
        return f"the body is not valid JSON: {why} at character {broken['loc'][-1]}"
    if any(e["loc"] == ("body",) and e["type"] == "missing" for e in on_body):
        return "the request has no body: send a JSON object with Content-Type: application/json"
    if on_body and content_type.split(";")[0].strip() != "application/json":
        return f"send the body as JSON with Content-Type: application/json (it came as {content_type or 'no type'!r})"
    return None


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

    app = FastAPI(title="hybrid-scorer", version=__version__, lifespan=lifespan, description=DESCRIPTION)
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
        shape = POST_SHAPE if _takes_a_post(request.scope.get("route")) else None  # a post's errors end with its shape
        raw = exc.errors()
        unread = _unread_body(raw, request.headers.get("content-type", ""))
        if unread is not None:
            return JSONResponse({"detail": unread + (f" (expected {shape})" if shape else "")}, status_code=422)
        errors = [{**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]} for e in raw]
        if any(e["loc"][:1] != ("body",) for e in raw):  # a query parameter: the request is wrong
            return JSONResponse({"detail": describe_errors(errors, "request", None)}, status_code=422)
        return JSONResponse({"detail": describe_errors(errors, "post" if shape else "request", shape)}, status_code=422)

    return app
