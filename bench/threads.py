"""How long OpenMP workers spin before they sleep, measured: LightGBM's fits and the embedded LLM's
extraction share libgomp's threads on 2 cores, and the package sets the spin at import
(hybrid_scorer/__init__.py). For each policy, in fresh processes (libgomp reads it when it loads):

- one content-model fit (the first grouped fold's training posts), alone;
- an extraction of the first N posts into an empty cache, alone;
- the same fits while that extraction runs in another process with the same policy (what a developer
  who trains during an extraction, or two jobs on one machine, gets).

Usage: python bench/threads.py [--data CSV] [--posts 150] [--fits 3]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICIES = {
    "spin 3,000 (the default)": {"GOMP_SPINCOUNT": "3000"},
    "passive (never spin)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "libgomp's default (3 ms)": {"GOMP_SPINCOUNT": "300000"},
}


def _env(policy: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return env | policy


def fit_seconds(data: str, fits: int) -> list[float]:
    """Seconds of each of `fits` content-model fits on the first fold's training posts (this process)."""
    from hybrid_scorer.data import grouped_folds, prepare_posts
    from hybrid_scorer.features.matrix import CONTENT_GROUPS
    from hybrid_scorer.model import HybridScorer

    posts, _ = prepare_posts(data)
    train, _ = grouped_folds(posts)[0]
    out = []
    for _ in range(fits):
        started = time.perf_counter()
        HybridScorer(CONTENT_GROUPS).fit(posts.iloc[train])
        out.append(time.perf_counter() - started)
    return out


def _fits(data: str, fits: int, policy: dict[str, str]) -> list[float]:
    command = [sys.executable, __file__, "--data", data, "--fits", str(fits), "--worker"]
    done = subprocess.run(command, env=_env(policy), capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _extraction(data: str, posts: int, policy: dict[str, str], cache: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hybrid_scorer.cli", "extract", "--data", data, "--llm", "embedded"]
    command += ["--limit", str(posts), "--cache-dir", str(cache), "--out", str(cache / "out"), "-q"]
    return subprocess.Popen(command, env=_env(policy), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(process: subprocess.Popen[bytes], started: float) -> float:
    if process.wait() != 0:
        raise SystemExit(f"the extraction failed (exit {process.returncode}); run `hybrid-scorer extract` alone")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("ASKSCIENCE_CSV", "data/askscience_data.csv"))
    parser.add_argument("--posts", type=int, default=150, help="posts the extraction reads")
    parser.add_argument("--fits", type=int, default=3, help="fits timed per measurement (the median is shown)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(fit_seconds(args.data, args.fits)))
        return 0
    print(f"{'policy':<28}{'fit alone':>12}{'extract alone':>16}{'fit beside it':>16}{'extract beside':>17}")
    for name, policy in POLICIES.items():
        alone = sorted(_fits(args.data, args.fits, policy))[args.fits // 2]
        with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
            started = time.perf_counter()
            extract_alone = _wait(_extraction(args.data, args.posts, policy, Path(first)), started)
            started = time.perf_counter()
            running = _extraction(args.data, args.posts, policy, Path(second))
            time.sleep(8)  # past the model's load: the fits meet the decoding
            beside = sorted(_fits(args.data, args.fits, policy))[args.fits // 2]
            extract_beside = _wait(running, started)
        print(f"{name:<28}{alone:>10.2f} s{extract_alone:>14.1f} s{beside:>14.2f} s{extract_beside:>15.1f} s")
    print(
        f"(fit: the content model on one fold's 4/5 of the posts, median of {args.fits}; extract: {args.posts} posts"
        " into an empty cache, the model's load included; beside: the fits start 8 s into an extraction)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
