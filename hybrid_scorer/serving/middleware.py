"""Pure ASGI middleware of the service: a body size limit, a bound on requests in flight, and request
metrics. Pure ASGI rather than Starlette's BaseHTTPMiddleware, which costs each request far more."""

from __future__ import annotations

import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybrid_scorer.serving.metrics import ServiceMetrics


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
