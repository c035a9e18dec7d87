"""Load test of a real `hybrid-scorer serve` process on 127.0.0.1, with wrk (a C load generator, so the
client takes little of the 2 cores) for the fast modes and an httpx client for the live-LLM mode.

Modes: (a) the content model (`--llm none`), (b) the hybrid with the LLM answers in the cache (posts from
the training data), (c) the hybrid with live embedded-LLM calls (new titles, nothing cached; httpx, so
each answer's fallback flag can be read). For (a) and (b) every connection count runs `GET /healthz` and
`POST /v1/predict` against the same process in the same run, so the ratio to the framework's own limit
is printed beside the numbers. Every run is bounded in time and stops by itself. wrk comes from Debian's
package (`apt-get install wrk`). Needs `make run` first (models and the LLM cache).

Usage: python bench/load.py [--data CSV] [--modes a,b,c] [--connections 8,32,64] [--seconds 10] [--no-check]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
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
from hybrid_scorer.data import deduplicate, load_posts

MODES = {"a": "content model", "b": "hybrid, LLM answers cached", "c": "hybrid, live embedded LLM"}
WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    fallback: float | None = None  # share of flagged fallbacks, where the client reads the answers

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(mode: str, model_dir: str | None, check: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "hybrid_scorer.cli", "serve", "--port", str(port)]
    command += ["--log", str(Path(tempfile.mkdtemp()) / "predictions.jsonl")]
    command += ["--model-dir", model_dir] if model_dir else []
    command += ["--llm", "none"] if mode == "a" else []
    env = os.environ.copy() | ({} if check else {"HYBRID_SCORER_STEERING_LIMIT_LOG": "null"})
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=env)
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


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, connections: int, seconds: float, bodies: Path | None) -> Run:
    """One wrk run (one thread: the server needs the other core); POSTs the bodies in turn if given."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    if bodies is not None:
        script = Path(tempfile.mkdtemp()) / "post.lua"
        script.write_text(WRK_SCRIPT % bodies)
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert total is not None, out
    seconds_run = float(total.group(2)) * {"s": 1.0, "ms": 1e-3, "m": 60.0}[total.group(3)]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    p50, p99 = (_ms(re.search(rf"\s{q}%\s+(\S+)", out).group(1)) for q in ("50", "99"))  # type: ignore[union-attr]
    return Run(int(total.group(1)), seconds_run, p50, p99, errors)


async def closed_loop(url: str, posts: list[dict[str, str]], clients: int, max_requests: int, seconds: float) -> Run:
    """`clients` concurrent loops, each sending its next post as soon as the previous answer arrives."""
    latencies: list[float] = []
    errors = fallbacks = 0
    counter = iter(range(max_requests))
    stop_at = time.perf_counter() + seconds
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
    p50, p99 = np.percentile(latencies, [50, 99])
    return Run(len(latencies), time.perf_counter() - started, p50, p99, errors, fallbacks / len(latencies))


def _row(mode: str, route: str, connections: int, run: Run, healthz: Run | None = None) -> None:
    share = f"{run.rate / healthz.rate:>9.0%}" if healthz is not None else f"{'':>9}"
    fallback = f"{run.fallback:>8.1%}" if run.fallback is not None else f"{'-':>8}"
    print(
        f"({mode}) {MODES[mode]:<27} {route:<15} {connections:>5} {run.requests:>8} {run.rate:>8.0f} {share}"
        f" {run.p50_ms:>8.2f} {run.p99_ms:>8.2f} {run.errors:>6} {fallback}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--model-dir", help="default: models/current")
    parser.add_argument("--modes", default="a,b,c")
    parser.add_argument("--connections", default="8,32,64", help="wrk connections (mode c: concurrent clients)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--live-requests", type=int, default=200, help="mode c: at most this many per run")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="serve with the steering check off (HYBRID_SCORER_STEERING_LIMIT_LOG=null): what it costs over HTTP",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`")
    raw = deduplicate(load_posts(get_settings(data_path=args.data).data_path))
    known = [{"title": t, "body": b} for t, b in zip(raw["title"], raw["body"], strict=True)]
    bodies = Path(tempfile.mkdtemp()) / "bodies.jsonl"
    bodies.write_text("".join(json.dumps(p) + "\n" for p in known))
    if args.no_check:
        print("the steering check is off in this run (--no-check: HYBRID_SCORER_STEERING_LIMIT_LOG=null)")
    print(
        f"{'mode':<31} {'route':<15} {'conns':>5} {'requests':>8} {'req/s':>8} {'/healthz':>9} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'errors':>6} {'fallback':>8}"
    )
    for mode in args.modes.split(","):
        process, url = start_server(mode, args.model_dir, check=not args.no_check)
        try:
            for connections in (int(c) for c in args.connections.split(",")):
                if mode == "c":
                    stamp = time.time_ns()
                    fresh = [{**p, "title": f"[{stamp}-{i}] {p['title'][:250]}"} for i, p in enumerate(known)]
                    run = asyncio.run(closed_loop(url, fresh, connections, args.live_requests, args.seconds))
                    _row(mode, "/v1/predict", connections, run)
                    continue
                wrk(url + "/v1/predict", connections, 2, bodies)  # warm-up: thread pool, caches, allocator
                healthz = wrk(url + "/healthz", connections, args.seconds, None)
                _row(mode, "/healthz", connections, healthz)
                _row(
                    mode,
                    "/v1/predict",
                    connections,
                    wrk(url + "/v1/predict", connections, args.seconds, bodies),
                    healthz,
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
