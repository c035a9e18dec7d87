"""Wall time of one full training of the content model and of the full hybrid on the real data.

LLM features come from the cache (run `hybrid-scorer extract` first); the time measured is the model's:
feature building (TF-IDF, PCA) + LightGBM. Target: <= 60 s on the 2-core machine."""

from __future__ import annotations

import argparse
import time

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.pipeline import client_for, llm_columns
from hybrid_scorer.roles import Role
from hybrid_scorer.specs import CONTENT, SERVED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--llm", default="embedded", help="LLM spec for the hybrid's cached features, or 'none'")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    started = time.perf_counter()
    posts, _ = prepare_posts(settings.data_path)
    print(f"load + clean + dedup: {time.perf_counter() - started:.2f} s ({len(posts)} posts)")
    configs = [CONTENT]
    client = client_for(args.llm, settings)
    if client is not None:
        configs.append(SERVED[Role.HYBRID])
        started = time.perf_counter()
        posts = llm_columns(posts, SERVED[Role.HYBRID].groups, client, progress=False).posts
        summary = client.ledger.summary()
        print(f"LLM columns from cache: {time.perf_counter() - started:.2f} s (hit rate {summary.hit_rate:.0%})")
    for config in configs:
        started = time.perf_counter()
        config.make(settings).fit(posts)
        print(f"train {config.name}: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
