"""The service's routes, on two routers: `probes` (liveness, readiness, metrics, the page: open, metrics
behind a key when HYBRID_SCORER_METRICS_REQUIRE_KEY is set) and
`scoring` (the /v1 API), whose every route depends on readiness and the caller's admission, so a route
added there cannot forget either."""
