"""Latency of `Predictor.predict()` on this machine, and the floor it cannot beat.

Rows: (a) content model, (b) hybrid with the LLM answers in the cache, (c) hybrid with a live embedded
LLM call, and the floor: LightGBM's raw predict of one pre-built feature row. Also the peak RSS of a
process holding a loaded predictor. Targets: (a) and (b) p50 <= 5 ms and p99 <= 20 ms.
Needs a trained model (`make run`) and, for (b), the extraction cache."""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.serving import PostInput, Predictor
from hybrid_scorer.serving.predictor import post_frame


def _percentiles(label: str, fn: Callable[[int], object], n: int, warmup: int = 5) -> None:
    for i in range(warmup):
        fn(i)
    timings = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        timings.append((time.perf_counter() - started) * 1000)
    p50, p99 = np.percentile(timings, [50, 99])
    print(f"{label:<48} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   (n={n})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--model-dir", type=Path, help="default: models/current")
    parser.add_argument("-n", type=int, default=300, help="predictions per row (live LLM row: n/10)")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    sample = posts.sample(args.n + 10, random_state=0).reset_index(drop=True)
    requests = [{"title": t, "body": b} for t, b in zip(sample["title"], sample["body"], strict=True)]
    log_dir = Path(tempfile.mkdtemp())

    content = Predictor(args.model_dir, llm="none", settings=settings, log_path=log_dir / "a.jsonl").load()
    _percentiles("(a) content model", lambda i: content.predict(requests[i]), args.n)

    hybrid = Predictor(args.model_dir, settings=settings, log_path=log_dir / "b.jsonl", llm_budget_ms=60_000).warm()
    if hybrid.hybrid is None:
        print("(b), (c): no hybrid model in the model directory; run `make run` first")
    else:
        first = hybrid.predict(requests[0])
        print(f"    cache check: first (b) request cache_hit={first.cache_hit}, fallback={first.fallback}")
        _percentiles("(b) hybrid, LLM answers cached", lambda i: hybrid.predict(requests[i]), args.n)
        stamp = time.time_ns()  # a title never seen before: no cache entry, a real LLM call
        fresh = [{"title": f"[{stamp}-{i}] {r['title'][:250]}", "body": r["body"]} for i, r in enumerate(requests)]
        _percentiles("(c) hybrid, live embedded LLM call", lambda i: hybrid.predict(fresh[i]), max(args.n // 10, 5))

    model = content.content
    assert model is not None
    row = model.features_.transform(post_frame(PostInput.model_validate(requests[0])))
    booster = model.booster_
    _percentiles("floor: LightGBM predict of one pre-built row", lambda i: booster.predict(row), args.n)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (content + hybrid predictors and the embedded LLM loaded): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
