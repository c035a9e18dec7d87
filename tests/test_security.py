"""Hostile clients against a real `serve`: API keys (salted hashes; the key never logged), a token bucket
per key (429 + Retry-After), a cap on requests in flight (503 + Retry-After), and schemathesis fuzzing the
service from its own OpenAPI schema with every check, on the content model and the hybrid."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from hybrid_scorer.serving.access import ApiKeys, new_key
from tests.test_service import _start, _stop

POST = {"title": "Why is the black hole gravity so strong?", "body": "Asking for a friend."}


def test_keys_are_checked_in_constant_time_against_salted_hashes() -> None:
    key, entry = new_key("alice")
    keys = ApiKeys.parse(entry)
    assert keys is not None and keys.identify(key) == "alice" and key not in entry
    assert keys.identify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.identify(None) is None and keys.identify("hs_bob_" + "x" * 40) is None


def test_keys_rate_limits_and_what_is_logged(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, alice_entry = new_key("alice")
    _, bob_entry = new_key("bob")
    keyfile = tmp_path / "keys.txt"
    keyfile.write_text(f"# salted hashes only\n{alice_entry}\n{bob_entry}\n")
    monkeypatch.setenv("HYBRID_SCORER_API_KEYS", str(keyfile))
    monkeypatch.setenv("HYBRID_SCORER_RATE_LIMIT_PER_S", "1")
    monkeypatch.setenv("HYBRID_SCORER_RATE_LIMIT_BURST", "3")
    service = _start(model_dir, tmp_path)
    try:
        assert httpx.post(service.url + "/v1/predict", json=POST).status_code == 401
        wrong = httpx.post(service.url + "/v1/predict", json=POST, headers={"X-API-Key": alice[:-2] + "zz"})
        assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["detail"]
        assert (
            httpx.get(service.url + "/healthz").status_code == 200
            and httpx.get(service.url + "/readyz").status_code == 200
        )
        assert httpx.get(service.url + "/metrics").status_code == 200  # open unless METRICS_REQUIRE_KEY
        answers = [httpx.post(service.url + "/v1/predict", json=POST, headers={"X-API-Key": alice}) for _ in range(6)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]  # the burst
        limited = [a for a in answers if a.status_code == 429]
        assert limited and all(int(a.headers["retry-after"]) >= 1 for a in limited)
        schema = httpx.get(service.url + "/openapi.json").json()
        assert "X-API-Key" in json.dumps(schema["components"]["securitySchemes"])
        metrics = httpx.get(service.url + "/metrics").text
        assert 'hybrid_scorer_requests_by_key_total{key="alice"} 6.0' in metrics
        assert 'hybrid_scorer_requests_by_key_total{key="invalid"} 2.0' in metrics
    finally:
        assert _stop(service)
    log = service.log.read_text()
    assert '"caller":"alice"' in log and alice not in log and alice not in service.stderr.read_text()


def test_a_flood_is_refused_at_once_past_the_in_flight_cap(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRID_SCORER_SERVE_MAX_IN_FLIGHT", "2")
    monkeypatch.setenv("HYBRID_SCORER_SERVE_MAX_BATCH", "2000")
    service = _start(model_dir, tmp_path)
    posts = [{"title": f"Question {i} about gravity?"} for i in range(2000)]
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda _: httpx.post(service.url + "/v1/predict/batch", json={"posts": posts}, timeout=120), range(8)
            ))  # fmt: skip
    finally:
        assert _stop(service)
    refused = [a for a in answers if a.status_code == 503]
    assert refused and all(a.headers["retry-after"] == "1" for a in refused)
    assert any(a.status_code == 200 for a in answers) and {a.status_code for a in answers} <= {200, 503}


def _schemathesis() -> str:
    found = shutil.which("schemathesis") or str(Path(__import__("sys").executable).with_name("schemathesis"))
    if not Path(found).exists():
        pytest.skip("schemathesis not installed (the [test] extra)")
    return found


@pytest.mark.parametrize("llm", ["none", "mock"])
def test_schemathesis_finds_nothing_with_every_check(model_dir: Path, tmp_path: Path, llm: str) -> None:
    """Schemathesis generates requests from the service's own /openapi.json (examples, coverage, fuzzing,
    stateful) and checks every answer: no 5xx, every body and status code as documented."""
    service = _start(model_dir, tmp_path, "--llm", llm)
    try:
        run = subprocess.run(
            [_schemathesis(), "run", service.url + "/openapi.json", "--checks", "all", "--max-time", "40",
             "--workers", "1", "--seed", "1", "--no-color"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        assert _stop(service)
    assert run.returncode == 0 and "No issues found" in run.stdout, run.stdout[-4000:]
