"""The HTTP service as a real `hybrid-scorer serve` process on 127.0.0.1, called over HTTP; its /metrics
scraped and parsed with prometheus_client's own parser; concurrency and shutdown exercised for real."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hybrid_scorer.cli import main
from hybrid_scorer.config import DEFAULT_PROMPT

POST = {"title": "Why is the black hole gravity so strong?", "body": "Asking for a friend."}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    stderr: Path


def _start(
    model: Path | str,
    tmp: Path,
    *extra: str,
    cache_dir: Path | None = None,
    wait_ready: bool = True,
    env: dict[str, str] | None = None,
) -> Service:
    """`hybrid-scorer serve` for a model directory or registry URI; the LLM cache defaults to the one
    the session's trained model was made with (next to its directory). `env`: more settings."""
    port = _free_port()
    cache = cache_dir or Path(model).parent / "cache"
    env = {**os.environ, "HYBRID_SCORER_CACHE_DIR": str(cache), **(env or {})}
    stderr = tmp / f"serve-{port}.log"
    log = tmp / "logs" / "predictions.jsonl"
    command = [sys.executable, "-m", "hybrid_scorer.cli", "serve", "--port", str(port), "--model", str(model)]
    process = subprocess.Popen([*command, "--log", str(log), *extra], env=env, stderr=stderr.open("w"))
    service = Service(f"http://127.0.0.1:{port}", process, log, stderr)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {stderr.read_text()[-2000:]}")
        try:
            if httpx.get(service.url + "/healthz", timeout=1).status_code == 200 and (
                not wait_ready or httpx.get(service.url + "/readyz", timeout=1).status_code == 200
            ):
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"serve not ready in 60 s: {stderr.read_text()[-2000:]}")


def _stop(service: Service) -> bool:
    """SIGTERM, as a process manager sends it; True when the server shut down on it (uvicorn finishes the
    in-flight requests, then re-raises the signal so the manager sees it: exit status -SIGTERM)."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
    return service.process.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def service(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = _start(model_dir, tmp_path_factory.mktemp("service"))
    yield running
    assert _stop(running)


def _metrics(service: Service) -> dict[str, float]:
    """Every sample of /metrics as 'name{label=value,...}' -> value, parsed by prometheus_client."""
    text = httpx.get(service.url + "/metrics").text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_health_readiness_and_model(service: Service) -> None:
    assert httpx.get(service.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(service.url + "/readyz").json() == {"status": "ready", "store_backlog": 0}
    models = httpx.get(service.url + "/v1/model").json()
    assert set(models) == {"hybrid", "content"}
    hybrid = models["hybrid"]
    assert hybrid["llm_model"] == "mock:mock-v1" and hybrid["prompt_version"].startswith(f"{DEFAULT_PROMPT}@")
    assert hybrid["feature_groups"][-3:] == ["llm_ratings", "llm_embedding", "llm_stack"]
    assert "cv_spearman" in hybrid["metrics"] and hybrid["intervals"]["kind"] == "cqr"
    assert set(hybrid["intervals"]["corrections"]) == {"0.8", "0.9"}
    schema = httpx.get(service.url + "/openapi.json").json()["components"]["schemas"]
    assert {"PostInput", "Prediction"} <= set(schema) and "title" in schema["PostInput"]["required"]


def test_predict_and_explain(service: Service) -> None:
    plain = httpx.post(service.url + "/v1/predict", json=POST)
    assert plain.status_code == 200
    prediction = plain.json()
    assert prediction["score"] >= 0 and not prediction["fallback"] and prediction["llm_called"]
    assert prediction["contributions"] is None and prediction["flair_read_as"] is None  # no flair sent
    flairs = httpx.get(service.url + "/v1/flairs").json()["flairs"]
    assert flairs and "none" not in flairs
    known = httpx.post(service.url + "/v1/predict", json={**POST, "flair": flairs[0].upper()}).json()
    unknown = httpx.post(service.url + "/v1/predict", json={**POST, "flair": "Not A Flair"}).json()
    assert (known["flair_read_as"], unknown["flair_read_as"]) == (flairs[0], "other")
    low, high = prediction["interval_90"]
    assert low <= prediction["interval_80"][0] <= prediction["score"] <= prediction["interval_80"][1] <= high
    explained = httpx.post(service.url + "/v1/predict?explain=true", json=POST).json()
    contributions = explained["contributions"]
    assert {"text_stats", "tfidf", "meta", "llm_ratings", "llm_embedding", "llm_stack", "bias"} == set(contributions)
    assert sum(contributions.values()) == pytest.approx(explained["log_score"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"body": "no title"}, 422, "'title': Field required"),
        ({"title": "ok", "titel": "typo"}, 422, "'titel': Extra inputs are not permitted"),
        ({"title": "x" * 301}, 422, "'title': String should have at most 300 characters"),
        ({"title": "ok", "body": "x" * 2_100_000}, 413, "exceeds the limit"),
    ],
)
def test_bad_requests_name_the_problem(service: Service, body: dict, status: int, needle: str) -> None:
    response = httpx.post(service.url + "/v1/predict", json=body)
    assert response.status_code == status and needle in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "content_type", "needle"),
    [
        ('{"title": "Why",', "application/json", "the body is not valid JSON: Expecting property name"),
        ("", "application/json", "the request has no body: send a JSON object"),
        ("title=Why", "application/x-www-form-urlencoded", "send the body as JSON with Content-Type: application/json"),
    ],
)
def test_a_body_that_is_no_json_object_says_how_to_send_one(
    service: Service, content: str, content_type: str, needle: str
) -> None:
    """A malformed, empty or form-encoded body: the answer says what to send, not a field that is not there."""
    response = httpx.post(service.url + "/v1/predict", content=content, headers={"content-type": content_type})
    detail = response.json()["detail"]
    assert response.status_code == 422 and needle in detail and "'title'" in detail  # and the shape of a post


def test_a_bad_query_parameter_is_named_as_one(service: Service) -> None:
    response = httpx.post(service.url + "/v1/predict?explain=maybe", json=POST)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: 'query.explain'")


def test_batch_scores_valid_posts_and_reports_errors_in_place(service: Service) -> None:
    response = httpx.post(service.url + "/v1/predict/batch", json={"posts": [POST, {"body": "x"}, POST]})
    results = response.json()["results"]
    assert response.status_code == 200 and len(results) == 3
    assert results[0]["prediction"]["score"] == results[2]["prediction"]["score"]
    assert results[1]["prediction"] is None and "'title'" in results[1]["error"]
    too_many = httpx.post(service.url + "/v1/predict/batch", json={"posts": [POST] * 65})
    assert too_many.status_code == 422 and "at most 64" in too_many.json()["detail"]


def test_concurrent_requests_are_all_valid_and_the_counters_add_up(service: Service) -> None:
    before = _metrics(service)
    key = "hybrid_scorer_http_requests_total{method=POST,route=/v1/predict,status=200}"
    posts = [{"title": f"Why does a star {i} shine so long?", "body": "x" * (i % 7)} for i in range(48)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda p: httpx.post(service.url + "/v1/predict", json=p, timeout=30), posts))
    assert all(r.status_code == 200 for r in responses)
    bodies = [r.json() for r in responses]
    assert all(b["score"] >= 0 and b["model_version"] for b in bodies)
    after = _metrics(service)
    assert after[key] - before.get(key, 0) == 48
    hits = "hybrid_scorer_predictions_total{model=hybrid}"
    content = "hybrid_scorer_predictions_total{model=content}"
    served = after.get(hits, 0) + after.get(content, 0) - before.get(hits, 0) - before.get(content, 0)
    assert served == 48
    assert after["hybrid_scorer_http_requests_in_flight{}"] == 1  # the /metrics request itself
    assert any(k.startswith("hybrid_scorer_model_info{") and "mock:mock-v1" in k for k in after)
    count = "hybrid_scorer_http_request_duration_seconds_count{method=POST,route=/v1/predict}"
    assert after[count] - before.get(count, 0) == 48


def test_service_traffic_reaches_the_log_and_the_monitor(
    service: Service, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = httpx.post(service.url + "/v1/predict", json={**POST, "title": "A fresh question for the log?"}).json()
    deadline = time.monotonic() + 5  # the log is written off the request path, within ~50 ms
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in service.log.read_text().splitlines()]
        if records and records[-1]["latency_ms"] == served["latency_ms"]:
            break
        time.sleep(0.02)
    assert records[-1]["latency_ms"] == served["latency_ms"], "the prediction never reached the log"
    assert records[-1]["features"]["title_chars"] > 0 and records[-1]["features"]["flair"] == "unknown"
    assert main(["monitor", "--log", str(service.log), "--model-dir", str(model_dir)]) == 0
    assert f"({len(records)} predictions)" in capsys.readouterr().out


def test_sigterm_lets_in_flight_requests_finish(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRID_SCORER_SERVE_MAX_BATCH", "3000")  # a batch long enough to be caught mid-way
    running = _start(model_dir, tmp_path)
    posts = [{"title": f"Question number {i} about gravity?", "body": "y" * (i % 500)} for i in range(3000)]
    outcome: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(
            r=httpx.post(running.url + "/v1/predict/batch?explain=true", json={"posts": posts}, timeout=60)
        )
    )
    thread.start()
    time.sleep(0.5)  # the batch is being scored (it takes several seconds here)
    assert thread.is_alive(), "the batch finished before SIGTERM: the test proves nothing, make it longer"
    assert _stop(running)
    thread.join(timeout=60)
    assert outcome["r"].status_code == 200 and len(outcome["r"].json()["results"]) == 3000


def test_sigterm_under_load_loses_no_prediction_log_line(model_dir: Path, tmp_path: Path) -> None:
    """Eight clients send requests back to back; SIGTERM arrives mid-stream. Every prediction a client
    received is a line in the log after the process exits (the log is written off the request path and
    drained on shutdown), and every line is whole JSON."""
    running = _start(model_dir, tmp_path)
    received: list[float] = []

    def client(worker: int) -> None:
        with httpx.Client(timeout=10) as http:
            for i in range(10_000):
                try:
                    response = http.post(running.url + "/v1/predict", json={"title": f"Load {worker}-{i} gravity?"})
                except httpx.HTTPError:
                    return  # the server has stopped accepting
                if response.status_code != 200:
                    return
                received.append(response.json()["latency_ms"])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert _stop(running)
    for thread in threads:
        thread.join(timeout=30)
    logged = [json.loads(line)["latency_ms"] for line in running.log.read_text().splitlines()]
    assert len(received) > 50, "too little traffic before SIGTERM to prove anything"
    assert set(received) <= set(logged) and len(logged) - len(received) <= 8  # at most the in-flight ones more


def test_a_mismatched_llm_is_not_ready_and_says_why(model_dir: Path, tmp_path: Path) -> None:
    edited = tmp_path / "models"
    shutil.copytree(model_dir, edited)
    manifest_path = edited / "hybrid" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["llm_model"] = "mock:another-model"
    manifest_path.write_text(json.dumps(manifest))
    running = _start(edited, tmp_path, wait_ready=False)
    try:
        deadline = time.monotonic() + 30
        while (ready := httpx.get(running.url + "/readyz")).status_code == 503 and "loading" in ready.text:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert ready.status_code == 503 and "ModelMismatchError" in ready.json()["detail"]
        assert "mock:another-model" in ready.json()["detail"]
        assert httpx.get(running.url + "/healthz").status_code == 200
        assert httpx.post(running.url + "/v1/predict", json=POST).status_code == 503
    finally:
        _stop(running)
