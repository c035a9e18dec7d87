"""Load test of a real `hybrid-scorer serve` process on 127.0.0.1, at 1, 8 and 32 concurrent clients.

Modes: (a) the content model (`--llm none`), (b) the hybrid with the LLM answers in the cache (posts from
the training data), (c) the hybrid with live embedded-LLM calls (new titles, so nothing is cached).
Every run is bounded in requests and seconds and stops by itself. Prints requests/s, p50/p95/p99,
errors and the share of flagged fallbacks. Needs `make run` first (models and the LLM cache).

Usage: python bench/load.py [--data CSV] [--modes a,b,c] [--clients 1,8,32] [--requests 400] [--seconds 30]"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import prepare_posts

MODES = {"a": "content model", "b": "hybrid, LLM answers cached", "c": "hybrid, live embedded LLM"}


@dataclass
class Result:
    latencies_ms: list[float]
    errors: int
    fallbacks: int
    seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(mode: str, model_dir: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "hybrid_scorer.cli", "serve", "--port", str(port)]
    command += ["--log", str(Path(tempfile.mkdtemp()) / "predictions.jsonl")]
    command += ["--model-dir", model_dir] if model_dir else []
    command += ["--llm", "none"] if mode == "a" else []
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode}")
        time.sleep(0.2)
    process.kill()
    raise SystemExit("serve was not ready within 120 s")


async def run(url: str, posts: list[dict[str, str]], clients: int, max_requests: int, max_seconds: float) -> Result:
    """`clients` concurrent loops, each sending its next post as soon as the previous answer arrives."""
    latencies: list[float] = []
    errors = fallbacks = 0
    counter = iter(range(max_requests))
    stop_at = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors, fallbacks
        for i in counter:
            if time.perf_counter() > stop_at:
                return
            started = time.perf_counter()
            try:
                response = await http.post(url + "/v1/predict", json=posts[i % len(posts)])
                ok = response.status_code == 200
                fallbacks += int(ok and response.json()["fallback"])
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            errors += int(not ok)

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return Result(latencies, errors, fallbacks, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--model-dir", help="default: models/current")
    parser.add_argument("--modes", default="a,b,c")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=400, help="at most this many requests per run")
    parser.add_argument("--seconds", type=float, default=30.0, help="and at most this long per run")
    args = parser.parse_args()
    posts, _ = prepare_posts(get_settings(data_path=args.data).data_path)
    known = [{"title": t, "body": b} for t, b in zip(posts["title"], posts["body"], strict=True)]
    print(
        f"{'mode':<34} {'clients':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'errors':>6} {'fallback':>8}"
    )
    for mode in args.modes.split(","):
        process, url = start_server(mode, args.model_dir)
        try:
            for clients in (int(c) for c in args.clients.split(",")):
                stamp = time.time_ns()
                fresh = [{**p, "title": f"[{stamp}-{i}] {p['title'][:250]}"} for i, p in enumerate(known)]
                workload = fresh if mode == "c" else known
                r = asyncio.run(run(url, workload, clients, args.requests, args.seconds))
                p50, p95, p99 = np.percentile(r.latencies_ms, [50, 95, 99])
                n = len(r.latencies_ms)
                print(
                    f"({mode}) {MODES[mode]:<30} {clients:>7} {n:>8} {n / r.seconds:>7.1f} {p50:>8.1f} {p95:>8.1f}"
                    f" {p99:>8.1f} {r.errors:>6} {r.fallbacks / n:>8.1%}",
                    flush=True,
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
