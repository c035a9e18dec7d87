"""Latency of scoring one post in process, batch path and row path side by side, and the floor.

For the content model and the served hybrid (LLM answers from the cache), over the same real posts sent
as a caller sends them (title and body; the flair unknown, as `predict({'title':..., 'body':...})`, and
known in a second pass):
- `predict()` end to end: validation, cleaning, the LLM outputs from the cache, the row path, intervals
  and the log line (written off the request path);
- batch path: the model's `predict_log` on the post's one-row DataFrame (what predict() did before the
  row path: pandas, scipy.sparse, scikit-learn's vectorizer);
- row path: `score(PostRow, heads=False)`, the point model on the post's PostRow (numpy only);
- the point model and its heads on the pre-built feature row, one LightGBM call each, stacked into one
  forest (hybrid_scorer/forests.py), and that forest by LightGBM's fast single-row call as the row path
  serves it (hybrid_scorer/rowforest.py); predict() again with the steering check off (it scores a post
  once more per sentence: hybrid_scorer/steering.py), and both by how many variants the check scores;
- floor: LightGBM's own predict of the post's pre-built feature row, one thread; and predict()'s p50 as
  a multiple of it; beside it the point model alone by the fast call (what the trees cost).
Then (c) the hybrid with a live embedded-LLM call (new titles: nothing cached). Needs `make run` (models
and the LLM cache). Usage: python bench/predict.py [--data CSV] [--model-dir DIR] [-n 300]"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python bench/predict.py`: the repository root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.parity import served_rows
from hybrid_scorer.config import get_settings
from hybrid_scorer.data import deduplicate, load_posts, prepare_posts
from hybrid_scorer.pipeline import llm_columns
from hybrid_scorer.serving import Predictor
from hybrid_scorer.steering import candidates


def timed(fn: Callable[[int], object], n: int, warmup: int = 5) -> np.ndarray:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - started) * 1000)
    return np.asarray(out)


def show(label: str, ms: np.ndarray, against: np.ndarray | None = None) -> None:
    p50, p99 = np.percentile(ms, [50, 99])
    ratio = f"   {np.median(against) / p50:6.1f}x faster" if against is not None else ""
    print(f"  {label:<44} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms   p99/p50 {p99 / p50:4.1f}{ratio}")


def by_variants(scored: np.ndarray, checked: np.ndarray, plain: np.ndarray, floor: float) -> None:
    """predict()'s p50 with and without the check, by how many variants of the post the check scores
    (each part left out and, with the runs, each run of parts at the body's ends): what the check costs
    grows with them."""
    print("  by the variants the check scores (posts: share; p50 with the check, x floor; p50 without it):")
    for label, low, high in (("0", 0, 0), ("1", 1, 1), ("2-3", 2, 3), ("4-8", 4, 8), ("9 or more", 9, np.inf)):
        picked = (scored >= low) & (scored <= high)
        if picked.any():
            with_check, without = np.median(checked[picked]), np.median(plain[picked])
            print(
                f"    {label:<10} {int(picked.sum()):>4} posts: {picked.mean():>4.0%}   {with_check:7.3f} ms"
                f" {with_check / floor:5.1f}x   {without:7.3f} ms {without / floor:5.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--model-dir", type=Path, help="default: models/current")
    parser.add_argument("-n", type=int, default=300, help="posts per row (the live-LLM row: n/10)")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    raw = deduplicate(load_posts(settings.data_path))
    pick = np.random.default_rng(0).choice(len(posts), args.n, replace=False)
    posts, raw = posts.iloc[pick].reset_index(drop=True), raw.iloc[pick].reset_index(drop=True)
    requests = [{"title": t, "body": b} for t, b in zip(raw["title"], raw["body"], strict=True)]
    with_flair = [{**r, "flair": f} for r, f in zip(requests, raw["flair"], strict=True)]
    logs = Path(tempfile.mkdtemp())
    content = Predictor(args.model_dir, settings, llm="none", log_path=logs / "a.jsonl").load()
    hybrid = Predictor(args.model_dir, settings, log_path=logs / "b.jsonl", llm_budget_ms=60_000).warm()
    roles = [("content", content, content.models.content)]
    if hybrid.models.hybrid is not None:
        roles.append(("hybrid, LLM answers cached", hybrid, hybrid.models.hybrid))
    for label, predictor, model in roles:
        assert model is not None
        enriched = llm_columns(posts, model.groups, predictor.models.client, progress=False).posts
        rows = served_rows(raw, predictor.models.client, tuple(model.groups))
        vectors = [model.features_.transform_row(r)[None, :] for r in rows]
        for flair_known, sent in ((False, requests), (True, with_flair)):
            print(f"{label}, flair {'known' if flair_known else 'unknown (not sent)'}:")
            frame = enriched if flair_known else enriched.assign(flair=None)
            each = rows if flair_known else [replace(r, flair=None) for r in rows]
            for request in sent:  # every post once first: the LLM cache's pages and the allocator are warm
                assert not predictor.predict(request).fallback
            end_to_end = timed(lambda i, p=predictor, s=sent: p.predict(s[i]), args.n)
            show("predict() end to end", end_to_end)
            batch = timed(lambda i, m=model, f=frame: m.predict_log(f.iloc[[i]]), args.n)
            show("batch path: predict_log(one-row DataFrame)", batch)
            show(
                "row path: score(PostRow, heads=False)",
                timed(lambda i, m=model, e=each: m.score(e[i], heads=False), args.n),
                batch,
            )
            if flair_known:
                boosters = [model.booster_, *model.heads_.values()]
                separately = timed(lambda i, b=boosters, v=vectors: [x.predict(v[i], num_threads=1) for x in b], args.n)
                show(f"the point model and {len(model.heads_)} heads, one call each", separately)
                stacked = timed(lambda i, m=model, v=vectors: m.stacked_["known"].predict(v[i], num_threads=1), args.n)
                show("the same, stacked into one forest", stacked, separately)
                fast = timed(lambda i, m=model, v=vectors: m.row_stacked_["known"](v[i][0]), args.n)
                show("that forest by the fast single-row call (served)", fast, separately)
                floor = timed(lambda i, m=model, v=vectors: m.booster_.predict(v[i], num_threads=1), args.n)
                show("floor: LightGBM predict of the built row", floor)
                point = timed(lambda i, m=model, v=vectors: m.row_point_["known"](v[i][0]), args.n)
                show("the point model by the fast single-row call", point)
                unchecked = Predictor(
                    args.model_dir,
                    settings.model_copy(update={"steering_limit_log": None}),
                    client=predictor.models.client,
                    llm=predictor.llm,
                    log_path=logs / "unchecked.jsonl",
                    llm_budget_ms=60_000,
                ).load()
                plain = timed(lambda i, p=unchecked, s=sent: p.predict(s[i]), args.n)
                show("predict() without the steering check", plain)
                unchecked.close()
                for name, ms in (("predict()", end_to_end), ("predict() without the check", plain)):
                    ratio = np.median(ms) / np.median(floor)
                    print(f"  {name} p50 / floor p50: {ratio:.1f}x (issue 31's target: at most 8x)")
                scored = np.array([len(candidates(r, runs=settings.steering_runs)) for r in each])
                by_variants(scored, end_to_end, plain, float(np.median(floor)))
    if hybrid.models.hybrid is not None:
        stamp = time.time_ns()  # titles never seen before: no cache entry, a real LLM call each
        fresh = [{"title": f"[{stamp}-{i}] {r['title'][:250]}", "body": r["body"]} for i, r in enumerate(requests)]
        print("(c) hybrid, live embedded LLM call:")
        answers: list[float] = []
        live = timed(lambda i: answers.append(hybrid.predict(fresh[i]).llm_latency_ms), max(args.n // 10, 5))
        show("predict() end to end", live)
        show("of which the LLM call (queue, pass, cache write)", np.asarray(answers[-len(live) :]))
    for predictor in (content, hybrid):
        predictor.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (content + hybrid predictors and the embedded LLM loaded): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
