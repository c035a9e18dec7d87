"""The production loop on real parts: delayed labels through a real service and the monitor, alert rules
checked by promtool and evaluated by a real Prometheus scraping a real service, atomic model publishing
under SIGKILL, reload on SIGHUP, and the LLM spend limit."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import spearmanr

from hybrid_scorer.cli import main
from tests.conftest import synthetic_frame
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
    from hybrid_scorer.outcomes import OutcomeStore, outcomes_path

    log = tmp_path / "logs" / "predictions.jsonl"
    bad = tmp_path / "bad.csv"
    bad.write_text("prediction_id,score\n" + "a" * 32 + ",12\n" + "b" * 32 + ",-3\n")
    assert main(["feedback", str(bad), "--log", str(log)]) == 2
    assert "line 3" in capsys.readouterr().err and not outcomes_path(log).exists()
    good = tmp_path / "good.csv"
    good.write_text("prediction_id,score,observed_at\n" + "a" * 32 + ",12,2026-11-30T10:00:00\n" + "b" * 32 + ",0,\n")
    assert main(["feedback", str(good), "--log", str(log)]) == 0
    assert OutcomeStore(outcomes_path(log)).counts() == {
        "predictions": 0,
        "feedback": 2,
        "feedback_without_prediction": 2,
    }


# --- alert rules: promtool and a real Prometheus ------------------------------------------------------

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed: `apt-get install prometheus` (.ci/run installs it)")
    return found


def test_the_committed_rules_are_the_monitors_thresholds_and_promtool_passes_them() -> None:
    from hybrid_scorer.alerting import render_rules
    from hybrid_scorer.config import MonitorThresholds

    assert (RULES / "rules.yml").read_text() == render_rules(MonitorThresholds()), (
        "deploy/prometheus/rules.yml is stale: `hybrid-scorer alert-rules --out deploy/prometheus/rules.yml`"
    )
    promtool = _tool("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(RULES / "rules.yml")], capture_output=True, text=True)
    assert checked.returncode == 0 and "SUCCESS: 13 rules found" in checked.stdout, checked.stdout + checked.stderr
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
                try:
                    alerts = httpx.get(api + "/alerts", timeout=2).json()["data"]["alerts"]
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
