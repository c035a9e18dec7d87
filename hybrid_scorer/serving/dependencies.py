"""What a route asks for with `Depends`: the service state, readiness, and the caller (its API key and
its token bucket). A route on the `scoring` router gets readiness and the caller's admission without
asking (routers/scoring.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from hybrid_scorer.serving.access import retry_after
from hybrid_scorer.serving.state import ServiceState


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
