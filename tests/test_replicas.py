"""Several replicas on real parts: a real PostgreSQL (started here, in a temporary data directory) as the
one outcome store, three `hybrid-scorer serve` replicas (content model) and a real nginx in front, all on
127.0.0.1. Predictions and their delayed feedback through the balancer meet in one realised-quality
figure; a real Prometheus scrapes every replica; the database stops and comes back without a prediction
failing; a replica stopped under load loses no feedback. Missing tools skip locally and fail under CI."""

from __future__ import annotations

import re
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
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import spearmanr

from hybrid_scorer.cli import main
from hybrid_scorer.outcomes import OutcomeStore
from tests.cluster import Balancer, Postgres, post_as_a_client, replicas_behind_nginx, start_postgres
from tests.conftest import require_tool, synthetic_frame
from tests.test_production import RULES
from tests.test_service import Service, _free_port, _start, _stop

pytestmark = pytest.mark.integration
REPLICAS = 3


@dataclass
class Cluster:
    database: Postgres
    replicas: list[Service]
    balancer: Balancer


@pytest.fixture(scope="module")
def cluster(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    initdb, nginx = require_tool("initdb", "postgresql"), require_tool("nginx", "nginx")
    root = tmp_path_factory.mktemp("replicas")
    database = start_postgres(initdb)
    try:
        with replicas_behind_nginx(model_dir, root, database.url(), REPLICAS, nginx) as (replicas, balancer):
            yield Cluster(database, replicas, balancer)
    finally:
        database.remove()


def _wait(done: object, failure: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, failure
        time.sleep(0.2)


def _predict(http: httpx.Client, url: str, title: str, body: str) -> dict[str, float | str]:
    answer = post_as_a_client(http, url + "/v1/predict", {"title": title, "body": body})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _feedback(http: httpx.Client, url: str, prediction_id: str, score: float) -> None:
    answer = post_as_a_client(http, url + "/v1/feedback", {"prediction_id": prediction_id, "score": score})
    assert answer.status_code == 200, answer.text


def _metrics(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def _posts(n: int, seed: int) -> pd.DataFrame:
    return synthetic_frame(n * 2, seed=seed).drop_duplicates("title").head(n)


def test_predictions_and_feedback_through_the_balancer_give_one_realised_figure(
    cluster: Cluster, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """300 posts predicted through nginx (spread over the replicas), their scores fed back through nginx:
    the monitor's and every replica's /metrics realised Spearman is the one computed from the answers."""
    frame = _posts(300, seed=11)
    url = cluster.balancer.url
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda title, body: _predict(http, url, title, body), frame["title"], frame["body"]))
        ids = [str(a["prediction_id"]) for a in answers]
        list(pool.map(lambda i, score: _feedback(http, url, i, float(score)), ids, frame["score"]))
    served = [_metrics(r.url)["hybrid_scorer_predictions_total"] for r in cluster.replicas]
    assert sum(served) == len(frame) and min(served) > 0, served
    direct = spearmanr([a["log_score"] for a in answers], np.log1p(frame["score"].to_numpy(float))).statistic
    for replica in cluster.replicas:  # each reads the one store: all of them say the same
        metrics = _metrics(replica.url)
        assert metrics["hybrid_scorer_realised_labels"] == len(frame)
        assert metrics["hybrid_scorer_realised_spearman"] == pytest.approx(direct, abs=1e-3)
    monkeypatch.setenv("HYBRID_SCORER_DATABASE_URL", cluster.database.url())
    log = cluster.replicas[0].log  # one replica's log: the realised part still counts all of them
    assert main(["monitor", "--log", str(log), "--model-dir", str(model_dir)]) == 0
    out = capsys.readouterr().out
    found = re.search(rf"{len(frame)} labels, Spearman (-?\d\.\d+)", out)
    assert found is not None, out
    assert float(found.group(1)) == pytest.approx(direct, abs=1e-3)
    assert f"{len(frame)} labels for {len(frame)} predictions" in out


def test_a_real_prometheus_scraping_every_replica_evaluates_the_rules_over_all_of_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    prometheus = require_tool("prometheus", "prometheus")
    port = _free_port()
    targets = ", ".join(f"'{r.url.removeprefix('http://')}'" for r in cluster.replicas)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES / 'rules.yml'}\n"
        f"scrape_configs:\n  - job_name: hybrid-scorer\n    static_configs:\n      - targets: [{targets}]\n"
    )
    server = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api/v1"

    def query(expr: str) -> list[float]:
        try:
            answer = httpx.get(api + "/query", params={"query": expr}, timeout=5)
        except httpx.HTTPError:
            return []
        if answer.status_code != 200:  # 503 while Prometheus starts
            return []
        return [float(r["value"][1]) for r in answer.json()["data"]["result"]]

    frame = _posts(60, seed=12)
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                for title, body in zip(frame["title"], frame["body"], strict=True):
                    _predict(http, cluster.balancer.url, title, body)
                    time.sleep(0.02)

    def p99() -> list[float]:
        return query("hybrid_scorer:predict_latency_seconds:p99_5m")

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        _wait(lambda: query("count(up == 1)") == [REPLICAS], "Prometheus never saw every replica up")
        # the rule aggregates every replica's latency buckets into one p99 (finite once rates exist)
        _wait(lambda: len(p99()) == 1 and np.isfinite(p99()[0]), "the latency recording rule gave no p99")
        stop.set()
        sender.join(timeout=60)
        served = sum(_metrics(r.url)["hybrid_scorer_predictions_total"] for r in cluster.replicas)
        _wait(lambda: query("sum(hybrid_scorer_predictions_total)") == [served], "Prometheus' sum is not the replicas'")
        assert query("count(hybrid_scorer_store_backlog)") == [REPLICAS]
        # every replica reads the one store: one realised figure, whichever replica is scraped
        assert query("count(hybrid_scorer_realised_spearman)") == [REPLICAS]
        assert query("stddev(hybrid_scorer_realised_spearman)") == [0.0]
    finally:
        stop.set()
        sender.join(timeout=60)
        server.terminate()
        server.wait(timeout=30)


def test_predictions_keep_flowing_while_the_database_is_down_and_the_backlog_drains(cluster: Cluster) -> None:
    """PostgreSQL stopped for ~12 s: every prediction through nginx is answered, feedback is refused with
    503 (so the caller retries it), the replicas count the failed writes and report their backlog; back
    up, the backlog drains and every prediction of the outage joins its feedback."""
    url = cluster.balancer.url
    frame = _posts(600, seed=13)
    rows = iter(zip(frame["title"], frame["body"], frame["score"], strict=True))
    answers: list[tuple[dict[str, float | str], float]] = []
    cluster.database.stop()
    try:
        with httpx.Client(timeout=30) as http:
            outage_ends = time.monotonic() + 12
            while time.monotonic() < outage_ends:
                title, body, score = next(rows)
                answers.append((_predict(http, url, title, body), float(score)))
                time.sleep(0.02)
            refused = http.post(
                url + "/v1/feedback", json={"prediction_id": answers[0][0]["prediction_id"], "score": 1}
            )
            assert refused.status_code == 503
            backlog = sum(httpx.get(r.url + "/readyz").json()["store_backlog"] for r in cluster.replicas)
            failures = sum(_metrics(r.url)["hybrid_scorer_store_write_failures_total"] for r in cluster.replicas)
            assert backlog > 0 and failures > 0
    finally:
        cluster.database.start()

    def drained() -> bool:
        return all(httpx.get(r.url + "/readyz").json()["store_backlog"] == 0 for r in cluster.replicas)

    _wait(drained, "the backlog never drained", seconds=60)
    with httpx.Client(timeout=30) as http:
        for answer, score in answers:
            _feedback(http, url, str(answer["prediction_id"]), score)
    joined = OutcomeStore(cluster.database.url()).joined()
    ids = {str(a["prediction_id"]) for a, _ in answers}
    assert joined["prediction_id"].isin(ids).sum() == len(ids) > 100


def _served_release(url: str) -> str:
    return str(httpx.get(url + "/v1/model").json()["content"]["extra"]["release"])


def test_sighup_on_every_replica_serves_the_one_release_published_in_the_shared_directory(
    cluster: Cluster, csv_path: Path, tmp_path: Path
) -> None:
    """Two more replicas on one published model path: a retraining publishes a new release there, a
    SIGHUP to each makes both serve it (the release directory is what they share)."""
    models = tmp_path / "models" / "current"

    def train(seed: int) -> None:
        command = ["train", "--data", str(csv_path), "--llm", "none", "-q", "--no-register", "--out", str(models)]
        subprocess.run([sys.executable, "-m", "hybrid_scorer.cli", *command, "--seed", str(seed)], check=True)

    train(1)
    env = {"HYBRID_SCORER_DATABASE_URL": cluster.database.url()}
    replicas = []
    for i in range(2):
        (tmp_path / f"replica-{i}").mkdir()
        replicas.append(_start(models, tmp_path / f"replica-{i}", "--llm", "none", env=env))
    try:
        before = {_served_release(r.url) for r in replicas}
        train(2)
        published = models.resolve().name
        assert before != {published}
        for replica in replicas:
            replica.process.send_signal(signal.SIGHUP)
        _wait(lambda: {_served_release(r.url) for r in replicas} == {published}, "a replica kept the old release")
    finally:
        for replica in replicas:
            assert _stop(replica)


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_replica_stopped_under_load_loses_no_feedback(cluster: Cluster, kill: signal.Signals) -> None:
    """400 predict-then-feedback pairs from 8 clients through nginx; a replica is stopped a quarter of the
    way in, by SIGTERM (an orchestrator scaling down) or SIGKILL (a crash; a second replica, so one is
    left): nginx routes around it, every pair ends up joined in the store. Under SIGKILL that holds
    because a replica sharing a store answers only once the prediction is recorded."""
    url = cluster.balancer.url
    frame = _posts(400, seed=14)
    done: list[str] = []
    quarter = threading.Event()

    def pair(row: tuple[str, str, float]) -> None:
        with httpx.Client(timeout=30) as http:
            answer = _predict(http, url, row[0], row[1])
            _feedback(http, url, str(answer["prediction_id"]), float(row[2]))
        done.append(str(answer["prediction_id"]))
        if len(done) >= len(frame) // 4:
            quarter.set()

    victim = cluster.replicas[-1 if kill == signal.SIGTERM else -2]
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(pair, row) for row in zip(frame["title"], frame["body"], frame["score"], strict=True)]
        assert quarter.wait(120)
        victim.process.send_signal(kill)
        for future in futures:
            future.result()
    assert victim.process.wait(timeout=30) in (0, -kill)
    assert len(done) == len(frame)
    store = OutcomeStore(cluster.database.url())

    def lost() -> int:  # the last predictions reach the store within a writer cycle of their answer
        return len(done) - int(store.joined()["prediction_id"].isin(set(done)).sum())

    _wait(lambda: lost() == 0, "pairs lost: their prediction or feedback never reached the store")


def test_a_client_sends_again_an_answer_cut_off_after_its_headers() -> None:
    """The way CI once saw a SIGKILL land (the replica's headers passed on by nginx, its body never sent):
    a socket server that answers the first request with headers only and closes, the second in full.
    The client sends the request again and gets the whole answer; without the retry, httpx raises."""
    body = b'{"accepted":1}'
    seen: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for cut in (True, False):
            connection, _ = server.accept()
            with connection:
                seen.append(connection.recv(65536))
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 14\r\n\r\n"
                connection.sendall(head if cut else head + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v1/feedback"
    with httpx.Client(timeout=10) as http:
        answer = post_as_a_client(http, url, {"prediction_id": "p", "score": 1.0}, patience_s=10)
    thread.join(10)
    server.close()
    assert answer.status_code == 200 and answer.content == body
    assert len(seen) == 2 and all(b"POST /v1/feedback" in request for request in seen)
