"""The production loop on real parts: delayed labels through a real service and the monitor, alert rules
checked by promtool and evaluated by a real Prometheus scraping a real service, atomic model publishing
under SIGKILL, reload on SIGHUP, and the LLM spend limit."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import spearmanr

from hybrid_scorer.cli import main
from tests.conftest import require_tool, synthetic_frame
from tests.test_service import _free_port, _start, _stop


def test_delayed_labels_give_the_realised_spearman_of_the_replayed_predictions(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """500 posts replayed through a real service, their real scores fed back: the monitor's and /metrics'
    realised Spearman is the one computed directly from the answers and the scores."""
    frame = synthetic_frame(500, seed=7).drop_duplicates("url").head(500)
    service = _start(model_dir, tmp_path)
    try:
        answers = []
        for start in range(0, len(frame), 50):
            chunk = frame.iloc[start : start + 50]
            posts = [{"title": t, "body": b} for t, b in zip(chunk["title"], chunk["body"], strict=True)]
            results = httpx.post(service.url + "/v1/predict/batch", json={"posts": posts}, timeout=60).json()["results"]
            answers += [r["prediction"] for r in results]
        assert len(answers) == len(frame) >= 500
        items = [
            {"prediction_id": a["prediction_id"], "score": float(s)}
            for a, s in zip(answers, frame["score"], strict=True)
        ]
        accepted = httpx.post(service.url + "/v1/feedback/batch", json={"items": items}, timeout=60).json()
        assert accepted == {"accepted": len(items)}
        bad = httpx.post(service.url + "/v1/feedback", json={"prediction_id": "nope", "score": -1})
        assert (
            bad.status_code == 422 and "'prediction_id'" in bad.json()["detail"] and "'score'" in bad.json()["detail"]
        )
        direct = spearmanr([a["log_score"] for a in answers], np.log1p(frame["score"].to_numpy(float))).statistic
        metrics = {
            s.name: s.value
            for family in text_string_to_metric_families(httpx.get(service.url + "/metrics").text)
            for s in family.samples
        }
        assert metrics["hybrid_scorer_realised_spearman"] == pytest.approx(direct, abs=1e-12)
        assert metrics["hybrid_scorer_realised_labels"] == len(items) and metrics[
            "hybrid_scorer_feedback_total"
        ] == len(items)
    finally:
        assert _stop(service)
    assert main(["monitor", "--log", str(service.log), "--model-dir", str(model_dir)]) == 0
    out = capsys.readouterr().out
    found = re.search(rf"{len(items)} labels, Spearman (-?\d\.\d+)", out)
    assert found is not None, out
    assert float(found.group(1)) == pytest.approx(direct, abs=5e-4)  # printed to 3 decimals


def test_feedback_from_a_file_is_validated_row_by_row_and_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hybrid_scorer.outcomes import OutcomeStore, outcomes_path, store_url

    log = tmp_path / "logs" / "predictions.jsonl"
    bad = tmp_path / "bad.csv"
    bad.write_text("prediction_id,score\n" + "a" * 32 + ",12\n" + "b" * 32 + ",-3\n")
    assert main(["feedback", str(bad), "--log", str(log)]) == 2
    assert "line 3" in capsys.readouterr().err and not outcomes_path(log).exists()
    good = tmp_path / "good.csv"
    good.write_text("prediction_id,score,observed_at\n" + "a" * 32 + ",12,2026-11-30T10:00:00\n" + "b" * 32 + ",0,\n")
    assert main(["feedback", str(good), "--log", str(log)]) == 0
    assert OutcomeStore(store_url(None, log)).counts() == {
        "predictions": 0,
        "feedback": 2,
        "feedback_without_prediction": 2,
    }


def test_stores_created_at_once_in_one_process_each_migrate(tmp_path: Path) -> None:
    """Alembic keeps its migration context in module globals: the service's writer thread and `monitor`
    opening their stores together once tore each other's migration down (KeyError in alembic)."""
    from concurrent.futures import ThreadPoolExecutor

    from hybrid_scorer.outcomes import OutcomeStore

    stores = [OutcomeStore(f"sqlite:///{tmp_path / f'{i}.sqlite'}") for i in range(8)]
    with ThreadPoolExecutor(len(stores)) as pool:
        counts = list(pool.map(OutcomeStore.counts, stores))
    assert counts == [{"predictions": 0, "feedback": 0, "feedback_without_prediction": 0}] * len(stores)


def test_an_unreachable_database_never_fails_a_prediction_or_a_scrape(model_dir: Path, tmp_path: Path) -> None:
    """A store URL nothing listens on: predictions are answered and logged, the writer counts the failed
    write and keeps the record in its backlog, /metrics (realised quality included) still renders."""
    from prometheus_client import generate_latest

    from hybrid_scorer.config import Settings
    from hybrid_scorer.serving.metrics import ServiceMetrics
    from hybrid_scorer.serving.predictor import Predictor

    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", cache_dir=tmp_path)
    predictor = Predictor(model_dir, settings, llm="none", log_path=tmp_path / "predictions.jsonl")
    try:
        answer = predictor.predict({"title": "Why is the sky blue?", "body": ""})
        predictor.log.flush()
        predictor.recorder.drain()
        scrape = generate_latest(ServiceMetrics(lambda: predictor).registry).decode()
    finally:
        predictor.close()
    assert answer.prediction_id in (tmp_path / "predictions.jsonl").read_text()
    assert predictor.recorder.backlog == 1
    assert 'hybrid_scorer_store_write_failures_total{kind="predictions"} 1.0' in scrape
    assert "hybrid_scorer_store_backlog 1.0" in scrape


def test_answered_after_record_a_prediction_is_in_the_store_when_its_answer_returns(
    model_dir: Path, tmp_path: Path
) -> None:
    """What lets a replica die by SIGKILL without losing an answered prediction: with `answer_after_record`
    each answer, sync or on the event loop, returns only once its record is committed, here to the real
    SQLite store, read by a second connection with no flush in between."""
    import asyncio

    from hybrid_scorer.config import Settings
    from hybrid_scorer.outcomes import OutcomeStore, store_url
    from hybrid_scorer.serving.predictor import Predictor

    log_path = tmp_path / "predictions.jsonl"
    settings = Settings(answer_after_record=True, cache_dir=tmp_path)
    predictor = Predictor(model_dir, settings, llm="none", log_path=log_path)
    reader = OutcomeStore(store_url(None, log_path))
    post = {"title": "Why is the sky blue?", "body": ""}
    try:
        counts = [reader.counts()["predictions"]]
        predictor.predict(post)
        counts.append(reader.counts()["predictions"])
        asyncio.run(predictor.predict_async(post))
        counts.append(reader.counts()["predictions"])
    finally:
        predictor.close()
    assert counts == [0, 1, 2]
    assert Settings(database_url="sqlite:///x.db").answers_after_record  # replicas sharing a store: on
    assert not Settings().answers_after_record  # the embedded default keeps its writer cycle


# --- alert rules: promtool and a real Prometheus ------------------------------------------------------

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def _tool(name: str) -> str:
    return require_tool(name, "prometheus")


def test_the_committed_rules_are_the_monitors_thresholds_and_promtool_passes_them() -> None:
    from hybrid_scorer.alerting import render_rules, rules
    from hybrid_scorer.config import MonitorThresholds

    assert (RULES / "rules.yml").read_text() == render_rules(MonitorThresholds()), (
        "deploy/prometheus/rules.yml is stale: `hybrid-scorer alert-rules --out deploy/prometheus/rules.yml`"
    )
    promtool = _tool("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(RULES / "rules.yml")], capture_output=True, text=True)
    found = f"SUCCESS: {sum(map(len, rules(MonitorThresholds())))} rules found"  # every rule the code renders
    assert checked.returncode == 0 and found in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(RULES / "rules_test.yml")], capture_output=True, text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_promtool_finds_nothing_to_lint_in_a_real_metrics_scrape(model_dir: Path, tmp_path: Path) -> None:
    promtool = _tool("promtool")
    service = _start(model_dir, tmp_path)
    try:
        httpx.post(service.url + "/v1/predict", json={"title": "Why is the black hole gravity so strong?"})
        scrape = httpx.get(service.url + "/metrics").text
    finally:
        assert _stop(service)
    linted = subprocess.run([promtool, "check", "metrics"], input=scrape, capture_output=True, text=True)
    assert linted.returncode == 0 and linted.stdout.strip() == "" and linted.stderr.strip() == "", linted.stderr


def test_a_real_prometheus_scraping_a_real_service_raises_the_fallback_alert(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prometheus on 127.0.0.1 scrapes a real `serve` every second with the committed rules; new posts
    arrive eight at a time against a latency budget of 1 ms, so the one-at-a-time LLM refuses most of
    them (`busy`), and /api/v1/alerts shows HybridScorerFallbacksHigh pending or firing. Bounded: 60 s."""
    prometheus = _tool("prometheus")
    monkeypatch.setenv("HYBRID_SCORER_PREDICT_LLM_BUDGET_MS", "1")
    service = _start(model_dir, tmp_path)
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    target = service.url.removeprefix("http://")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES / 'rules.yml'}\n"
        f"scrape_configs:\n  - job_name: hybrid-scorer\n    static_configs:\n      - targets: ['{target}']\n"
    )
    server = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        api = f"http://127.0.0.1:{port}/api/v1"
        deadline, state, sent, fallbacks = time.monotonic() + 60, None, 0, 0

        def fresh(i: int) -> bool:  # a new title: nothing cached, a live LLM call or a refusal
            return bool(
                httpx.post(service.url + "/v1/predict", json={"title": f"Fresh question {i}?"}).json()["fallback"]
            )

        with ThreadPoolExecutor(8) as pool:
            while time.monotonic() < deadline and state is None:
                fallbacks += sum(pool.map(fresh, range(sent, sent + 16)))
                sent += 16
                try:  # Prometheus answers 503 "Service Unavailable" until it is ready: no alerts yet
                    answer = httpx.get(api + "/alerts", timeout=2)
                    alerts = answer.json()["data"]["alerts"] if answer.status_code == 200 else []
                except httpx.HTTPError:
                    alerts = []
                state = next(
                    (a["state"] for a in alerts if a["labels"]["alertname"] == "HybridScorerFallbacksHigh"), None
                )
                time.sleep(0.5)
        assert fallbacks > 0.2 * sent
        assert state in ("pending", "firing"), f"no fallback alert within 60 s ({fallbacks} of {sent} posts fell back)"
        targets = httpx.get(api + "/targets").json()["data"]["activeTargets"]
        assert targets[0]["health"] == "up"
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert _stop(service)


# --- atomic publishing and reload ----------------------------------------------------------------------


def _train_command(csv: Path, out: Path, seed: int) -> list[str]:
    return [sys.executable, "-m", "hybrid_scorer.cli", "train", "--data", str(csv), "--llm", "mock", "-q",
            "--no-register", "--out", str(out), "--seed", str(seed)]  # fmt: skip


def _release_of(models: Path) -> tuple[str, str]:
    """The release each served model says it came from (both load, or this raises)."""
    from hybrid_scorer.model import HybridScorer

    content, hybrid = (HybridScorer.load(models / role) for role in ("content", "hybrid"))
    assert content.manifest_ is not None and hybrid.manifest_ is not None and (models / "reference.json").is_file()
    return content.manifest_.extra["release"], hybrid.manifest_.extra["release"]


def test_train_killed_at_any_instant_leaves_one_whole_release_published(
    csv_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL at several moments of a retraining (another seed) into a published model path: every
    time, models/current loads, content and hybrid from one run, and a finished run is published whole."""
    monkeypatch.setenv("HYBRID_SCORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HYBRID_SCORER_EMBEDDING_COMPONENTS", "4")
    models = tmp_path / "models" / "current"
    started = time.monotonic()
    subprocess.run(_train_command(csv_path, models, 1), check=True, capture_output=True)
    full_run_s = time.monotonic() - started
    first = _release_of(models)
    assert first[0] == first[1] and models.is_symlink()
    rng = np.random.default_rng(0)
    for trial, fraction in enumerate(sorted(rng.uniform(0.05, 0.98, 5))):
        run = subprocess.Popen(_train_command(csv_path, models, 10 + trial), stderr=subprocess.DEVNULL)
        time.sleep(fraction * full_run_s)
        run.send_signal(signal.SIGKILL)
        run.wait()
        content, hybrid = _release_of(models)
        assert content == hybrid, f"SIGKILL at {fraction:.0%} of a run mixed releases {content} and {hybrid}"
    subprocess.run(_train_command(csv_path, models, 99), check=True, capture_output=True)
    last = _release_of(models)
    assert last[0] == last[1] != first[0]
    assert len(list((models.parent / "releases").iterdir())) == 3  # the published one and the two newest others


def _served_release(url: str) -> str:
    return str(httpx.get(url + "/v1/model").json()["hybrid"]["extra"]["release"])


def test_sighup_reloads_a_new_release_without_dropping_a_request_and_a_bad_one_keeps_the_old(
    csv_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybrid_scorer.releases import new_release, publish

    monkeypatch.setenv("HYBRID_SCORER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HYBRID_SCORER_EMBEDDING_COMPONENTS", "4")
    models = tmp_path / "models" / "current"
    subprocess.run(_train_command(csv_path, models, 1), check=True, capture_output=True)
    service = _start(models, tmp_path, cache_dir=tmp_path / "cache")
    statuses: list[int] = []
    stop = False

    def traffic() -> None:
        with httpx.Client(timeout=30) as http:
            i = 0
            while not stop:
                answer = http.post(service.url + "/v1/predict", json={"title": f"Reload {i} gravity?"})
                statuses.append(answer.status_code)
                i += 1

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        before = _served_release(service.url)
        subprocess.run(_train_command(csv_path, models, 2), check=True, capture_output=True)
        after = models.resolve().name
        assert after != before and _served_release(service.url) == before  # published, not yet served
        service.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while _served_release(service.url) != after and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _served_release(service.url) == after
        # a broken release (its hybrid cannot load) is refused: the good one keeps serving, and says why
        broken = new_release(models)
        shutil.copytree(models.resolve(), broken, dirs_exist_ok=True)
        (broken / "hybrid" / "lightgbm.txt").write_text("not a model")
        publish(models, broken)
        service.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        failed = 'hybrid_scorer_model_reloads_total{result="failure"} 1.0'
        while failed not in httpx.get(service.url + "/metrics").text:
            assert time.monotonic() < deadline, "the failed reload was never counted"
            time.sleep(0.2)
        assert _served_release(service.url) == after and httpx.get(service.url + "/readyz").status_code == 200
    finally:
        stop = True
        sender.join(timeout=30)
        assert _stop(service)
    assert statuses and set(statuses) == {200}, f"requests failed during the reloads: {set(statuses)}"
    assert "reload failed, still serving" in service.stderr.read_text()
