"""Liveness, readiness, Prometheus metrics and the page at /: open to every caller (metrics may ask for a
key: HYBRID_SCORER_METRICS_REQUIRE_KEY)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hybrid_scorer.serving.dependencies import State, metrics_access, require_ready
from hybrid_scorer.serving.schemas import ERRORS, Readiness

PAGE = Path(str(resources.files("hybrid_scorer.serving") / "page"))  # the page at /, package data

probes = APIRouter()


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
