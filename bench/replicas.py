"""Several replicas behind nginx sharing one PostgreSQL outcome store, all on 127.0.0.1 (the harness of
tests/test_replicas.py: a throwaway PostgreSQL in a temporary data directory, `hybrid-scorer serve`
replicas of the content model, nginx in front).

Prints: (1) throughput through the balancer with 1 and with 2 replicas (wrk, POST /v1/predict, 16
connections); (2) lost feedback out of N predict-then-feedback pairs when one of two replicas is
stopped a quarter of the way in, by SIGTERM (a scale-down or rolling update) and by SIGKILL (a crash);
(3) the realised Spearman that `hybrid-scorer monitor` and /metrics read from the store against the one
computed directly from the answers; (4) the database stopped for a while under traffic: predictions
answered, the backlog and how long it takes to drain; (5) the SQLite default's store writes on the
code before the shared store and on this code, in the same run.

Needs initdb/pg_ctl (postgresql), nginx and wrk. Trains a content model on --data unless --model-dir
is given. Usage: python bench/replicas.py [--data CSV] [--pairs 1000] [--outage 60] [--seconds 10]"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harness lives with the tests

from load import wrk  # noqa: E402  (bench/load.py, beside this script)

from hybrid_scorer.config import get_settings  # noqa: E402
from hybrid_scorer.data import deduplicate, load_posts  # noqa: E402
from hybrid_scorer.outcomes import Feedback, OutcomeStore, store_url  # noqa: E402
from tests.cluster import Balancer, Postgres, post_as_a_client, replicas_behind_nginx, start_postgres  # noqa: E402
from tests.conftest import find_tool  # noqa: E402
from tests.test_service import Service  # noqa: E402

BEFORE = "8e239a9"  # the last commit whose outcome store was sqlite3 on its own


@dataclass
class Cluster:
    replicas: list[Service]
    balancer: Balancer
    database_url: str


@contextlib.contextmanager
def cluster(model: Path, postgres: Postgres, nginx: str, replicas: int, name: str) -> Iterator[Cluster]:
    """`replicas` serve processes on a fresh database of `postgres`, nginx in front."""
    root = Path(tempfile.mkdtemp(prefix=f"replicas-{name}-"))
    url = postgres.create(name)
    with replicas_behind_nginx(model, root, url, replicas, nginx) as (started, balancer):
        yield Cluster(started, balancer, url)


def _feedback(http: httpx.Client, url: str, prediction_id: str, score: float) -> bool:
    payload = {"prediction_id": prediction_id, "score": score}
    return post_as_a_client(http, url + "/v1/feedback", payload).status_code == 200


def _others_cpu_s() -> dict[int, float]:
    """CPU seconds so far, per process, of every process that is not this bench's (its replicas, nginx,
    wrk) nor PostgreSQL's: the machine is shared, and what others take is missing from the replicas."""
    ours = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    total: dict[int, float] = {}
    for process in psutil.process_iter(["pid", "username", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["pid"] not in ours and process.info["username"] != "postgres" and times is not None:
            total[process.info["pid"]] = times.user + times.system
    return total


def _others_since(before: dict[int, float]) -> float:
    """CPU seconds other processes took since `before`: per process, so one that exits meanwhile takes
    its past seconds with it instead of making the sum negative (its last seconds go uncounted)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in _others_cpu_s().items())


def throughput(model: Path, postgres: Postgres, nginx: str, bodies: Path, seconds: float, rounds: int) -> None:
    """1 and 2 replicas (each behind its own nginx, both up, the idle one costing nothing) measured in
    turn, `rounds` times: other jobs on a shared machine come and go, and alternating puts both setups
    under the same ones; the ratio is the median of each round's."""
    with (
        cluster(model, postgres, nginx, 1, "throughput1") as one,
        cluster(model, postgres, nginx, 2, "throughput2") as two,
    ):
        ratios = []
        for round_ in range(rounds):
            rates = {}
            for n, running in ((1, one), (2, two)):
                url = running.balancer.url + "/v1/predict"
                wrk(url, 16, 2, bodies)  # warm-up
                before = _others_cpu_s()
                run = wrk(url, 16, seconds, bodies)
                others = _others_since(before) / run.seconds
                rates[n] = run.rate
                print(f"  round {round_ + 1}, {n} replica(s): {run.rate:5.0f} req/s  p50 {run.p50_ms:6.2f} ms"
                      f"  p99 {run.p99_ms:6.2f} ms  errors {run.errors}  (other jobs: {others:.2f} of"
                      f" {os.cpu_count()} cores)", flush=True)  # fmt: skip
            ratios.append(rates[2] / rates[1])
    print(f"  2 replicas / 1 replica, per round: {', '.join(f'{r:.2f}' for r in ratios)}x;"
          f" median {float(np.median(ratios)):.2f}x", flush=True)  # fmt: skip


def pairs(running: Cluster, posts: pd.DataFrame, kill: signal.Signals) -> list[tuple[dict[str, Any], float]]:
    """Every post predicted then fed back through the balancer by 16 clients; one replica gets `kill`
    when a quarter of the pairs are done. The answers of the pairs whose feedback was accepted."""
    url, victim = running.balancer.url, running.replicas[-1]
    done: list[tuple[dict[str, Any], float]] = []
    failed = 0
    quarter = threading.Event()
    local = threading.local()

    def pair(title: str, body: str, score: float) -> None:
        nonlocal failed
        http = local.__dict__.setdefault("http", httpx.Client(timeout=30))
        try:
            answer = post_as_a_client(http, url + "/v1/predict", {"title": title, "body": body})
            accepted = answer.status_code == 200 and _feedback(http, url, answer.json()["prediction_id"], score)
        except httpx.HTTPError:  # counted, not fatal: the bench reports what a client would have seen
            accepted = False
        if not accepted:
            failed += 1
            return
        done.append((answer.json(), score))
        if len(done) >= len(posts) // 4:
            quarter.set()

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(pair, *row) for row in zip(posts["title"], posts["body"], posts["score"], strict=True)]
        quarter.wait(300)
        victim.process.send_signal(kill)
        for future in futures:
            future.result()
    victim.process.wait(timeout=60)
    print(f"  {kill.name}: {len(done)} of {len(posts)} pairs answered (predict and feedback), {failed} failed",
          flush=True)  # fmt: skip
    return done


def lost(database_url: str, done: list[tuple[dict[str, Any], float]], wait_s: float = 10) -> int:
    """Pairs not joined in the store once the surviving replicas' writers have run (a few cycles)."""
    time.sleep(wait_s)
    joined = OutcomeStore(database_url).joined()
    return len(done) - int(joined["prediction_id"].isin({a["prediction_id"] for a, _ in done}).sum())


def realised(running: Cluster, model: Path, done: list[tuple[dict[str, Any], float]]) -> None:
    direct = spearmanr([a["log_score"] for a, _ in done], np.log1p([s for _, s in done])).statistic
    env = {"HYBRID_SCORER_DATABASE_URL": running.database_url}
    monitor = subprocess.run(
        [sys.executable, "-m", "hybrid_scorer.cli", "monitor", "--log", str(running.replicas[0].log),
         "--model-dir", str(model)],
        capture_output=True, text=True, check=True, env={**os.environ, **env},
    ).stdout  # fmt: skip
    found = re.search(r"(\d+) labels, Spearman (-?\d\.\d+)", monitor)
    metrics = httpx.get(running.replicas[0].url + "/metrics", timeout=120).text  # a bootstrap over the labels
    exported = re.search(r'hybrid_scorer_realised_spearman\{cohort="[^"]+"\} (\S+)', metrics)
    print(f"  direct (answers vs log1p(score), {len(done)} pairs): {direct:.6f}")
    print(f"  hybrid-scorer monitor (the store, 3 decimals): {found.group(2) if found else '?'}"
          f" over {found.group(1) if found else '?'} labels")  # fmt: skip
    print(
        f"  /metrics hybrid_scorer_realised_spearman: {float(exported.group(1)) if exported else float('nan'):.6f}"
        f"  |difference| {abs(float(exported.group(1)) - direct) if exported else float('nan'):.2e}",
        flush=True,
    )


def outage(running: Cluster, postgres: Postgres, posts: pd.DataFrame, seconds: float) -> None:
    """4 clients predict through the balancer while PostgreSQL is stopped for `seconds`."""
    url, answered, errors = running.balancer.url, [], 0
    stop = threading.Event()

    def client(offset: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=30) as http:
            for i in range(offset, 10**9, 4):
                if stop.is_set():
                    return
                row = posts.iloc[i % len(posts)]
                try:
                    answer = http.post(url + "/v1/predict", json={"title": row["title"], "body": row["body"]})
                except httpx.HTTPError:
                    errors += 1
                    continue
                if answer.status_code == 200:
                    answered.append(answer.json()["prediction_id"])
                else:
                    errors += 1

    postgres.stop()
    with ThreadPoolExecutor(4) as pool:
        for offset in range(4):
            pool.submit(client, offset)
        time.sleep(seconds)
        backlog = sum(httpx.get(r.url + "/readyz").json()["store_backlog"] for r in running.replicas)
        stop.set()
    failures = sum(
        float(m) for r in running.replicas
        for m in re.findall(r'hybrid_scorer_store_write_failures_total\{kind="predictions"\} (\S+)',
                            httpx.get(r.url + "/metrics").text)
    )  # fmt: skip
    postgres.start()
    restarted = time.monotonic()
    while any(httpx.get(r.url + "/readyz").json()["store_backlog"] for r in running.replicas):
        time.sleep(0.1)
    drained_s = time.monotonic() - restarted
    time.sleep(1)  # the last writer cycle
    joined_ids = pd.read_sql_query("SELECT prediction_id FROM predictions", OutcomeStore(running.database_url).engine)
    stored = int(pd.Series(answered).isin(set(joined_ids["prediction_id"])).sum())
    print(f"  database down {seconds:.0f} s: {len(answered)} predictions answered, {errors} errors;"
          f" backlog at the end {backlog}, {failures:.0f} failed store writes (retried)")  # fmt: skip
    print(f"  database back: backlog drained in {drained_s:.1f} s; {stored} of {len(answered)} in the store",
          flush=True)  # fmt: skip


def _module_at(revision: str) -> ModuleType:
    """hybrid_scorer/outcomes.py as it was at `revision`, imported under another name."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:hybrid_scorer/outcomes.py"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    # the bootstrap it imports has moved since (quality.py); the write path measured here never calls it
    source = source.replace("hybrid_scorer.evaluation import bootstrap", "hybrid_scorer.quality import bootstrap")
    path = Path(tempfile.mkdtemp()) / "outcomes_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("outcomes_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def sqlite_writes(before: str, records: int = 20_000, batch: int = 50, feedback: int = 2_000) -> None:
    """The writer thread's batches (50 predictions: 50 ms at 1,000 req/s) and one-item feedback calls
    (POST /v1/feedback), into a fresh SQLite store each; best of 3, old and new interleaved."""
    old = _module_at(before)
    now = datetime.now(UTC).isoformat()
    shape = {"timestamp": now, "model_version": "v", "log_score": 1.0, "interval_80": (1.0, 9.0),
             "interval_90": (0.5, 12.0), "fallback": False}  # fmt: skip
    rows = [{"prediction_id": f"{i:032x}", **shape} for i in range(records)]
    items = [Feedback(f"{i:032x}", 3.0, datetime.now(UTC)) for i in range(feedback)]
    runs: dict[str, list[tuple[float, float, float, int]]] = {"before": [], "after": []}
    for _ in range(3):
        for name in ("before", "after"):
            log = Path(tempfile.mkdtemp()) / "predictions.jsonl"
            store = old.OutcomeStore(old.outcomes_path(log)) if name == "before" else OutcomeStore(store_url(None, log))
            started = time.perf_counter()
            for i in range(0, records, batch):
                store.add_predictions(rows[i : i + batch])
            write_s = time.perf_counter() - started
            started = time.perf_counter()
            for item in items:
                store.add_feedback([item])
            feedback_s = time.perf_counter() - started
            started = time.perf_counter()
            joined = len(store.joined())
            runs[name].append((write_s, feedback_s, time.perf_counter() - started, joined))
    for name, timed in runs.items():
        write_s, feedback_s, joined_s = (min(r[k] for r in timed) for k in range(3))
        print(f"  {name:<6} ({BEFORE if name == 'before' else 'this code'}): predictions {write_s / records * 1e6:6.1f}"
              f" us/record (batches of {batch}), feedback {feedback_s / feedback * 1e3:5.2f} ms/call,"
              f" joined() of {timed[0][3]} pairs {joined_s * 1e3:6.1f} ms", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--model-dir", type=Path, help="a trained model (default: train a content model on --data)")
    parser.add_argument("--pairs", type=int, default=1000, help="predict-then-feedback pairs per kill run")
    parser.add_argument("--replicas", type=int, default=3, help="replicas behind nginx in the kill runs (2, 3)")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the database is stopped")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="1-then-2-replica throughput rounds")
    parser.add_argument("--before", default=BEFORE, help="revision of the old sqlite3 store to compare with")
    parser.add_argument("--sections", default="1,2,4,5", help="which to run (3 comes with 2)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a stopped bench still stops what it started
    tools = {name: find_tool(name) for name in ("initdb", "nginx", "wrk")}
    if None in tools.values():
        raise SystemExit(f"missing {[n for n, t in tools.items() if t is None]}: apt-get install postgresql nginx wrk")
    data = get_settings(data_path=args.data).data_path
    posts = deduplicate(load_posts(data)).sample(frac=1.0, random_state=0)
    model = args.model_dir
    if model is None:
        model = Path(tempfile.mkdtemp()) / "models"
        print(f"training a content model on {data} ...", flush=True)
        subprocess.run([sys.executable, "-m", "hybrid_scorer.cli", "train", "--data", str(data), "--llm", "none",
                        "-q", "--no-register", "--out", str(model)], check=True)  # fmt: skip
    bodies = Path(tempfile.mkdtemp()) / "bodies.jsonl"
    bodies.write_text(
        "".join(json.dumps({"title": t, "body": b}) + "\n" for t, b in zip(posts["title"], posts["body"], strict=True))
    )
    postgres = start_postgres(str(tools["initdb"]))
    nginx = str(tools["nginx"])
    try:
        print(f"bench/replicas.py on {data} ({len(posts)} posts), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
              f" {os.cpu_count()} cores", flush=True)  # fmt: skip
        sections = set(args.sections.split(","))
        if "1" in sections:
            print(f"(1) throughput through nginx, content model, wrk 16 connections, {args.seconds:g} s per run:")
            throughput(model, postgres, nginx, bodies, args.seconds, args.rounds)
        if "2" in sections:
            lost_feedback(model, postgres, nginx, posts.head(args.pairs), args.replicas)
        if "4" in sections:
            print(f"(4) the database stopped for {args.outage:g} s under traffic, 2 replicas:")
            with cluster(model, postgres, nginx, 2, "outage") as running:
                outage(running, postgres, posts, args.outage)
        if "5" in sections:
            print("(5) the SQLite default (no HYBRID_SCORER_DATABASE_URL), store writes before/after:")
            sqlite_writes(args.before)
    finally:
        postgres.remove()


def lost_feedback(model: Path, postgres: Postgres, nginx: str, sample: pd.DataFrame, replicas: int) -> None:
    """Sections (2) and (3): one cluster per way of stopping the replica, each on its own database."""
    print(f"(2) lost feedback, {len(sample)} predict-then-feedback pairs, {replicas} replicas, one stopped at 25%:")
    for kill in (signal.SIGTERM, signal.SIGKILL):
        with cluster(model, postgres, nginx, replicas, f"kill{kill.name.lower()}") as running:
            done = pairs(running, sample, kill)
            print(f"  {kill.name}: lost {lost(running.database_url, done)} of {len(done)}", flush=True)
            if kill == signal.SIGTERM:
                print("(3) realised Spearman of those pairs:")
                realised(running, model, done)


if __name__ == "__main__":
    main()
