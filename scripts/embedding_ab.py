"""Is the one-pass embedding as good as the two-pass one it replaced? Paired, on the same folds.

"two-pass" is the previous design, still available as EmbeddedOptions(weights="as-shipped",
embedding="separate"): the shipped Q4_1 weights and a second forward pass of the bare text through an
embedding context. "one-pass" is the default: Q8_0-re-encoded weights, the mean hidden state of the
post's tokens in the assessment pass. Both go through the cache (a fresh machine computes the two-pass
embeddings once, ~20 min here); the configuration "content + LLM embedding" is cross-validated with each
on the evaluation folds, and the paired bootstrap gives the difference.

Usage: python scripts/embedding_ab.py [--data CSV]"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import grouped_folds, prepare_posts
from hybrid_scorer.evaluation import bootstrap_intervals, cross_validate
from hybrid_scorer.llm.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import load_prompt
from hybrid_scorer.llm.store import open_store
from hybrid_scorer.pipeline import llm_columns
from hybrid_scorer.specs import CONTENT_EMBEDDING

DESIGNS = {
    "two-pass (shipped Q4_1, separate embedding pass)": EmbeddedOptions(weights="as-shipped", embedding="separate"),
    "one-pass (Q8_0, hidden states of the assessment pass)": EmbeddedOptions(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    settings = get_settings(data_path=parser.parse_args().data)
    posts, _ = prepare_posts(settings.data_path)
    store = open_store(settings.cache_dir, settings.features)
    folds = grouped_folds(posts, settings.n_folds, settings.seed)
    y_log = np.log1p(posts["score"].to_numpy(np.float64))
    oof = {}
    for label, options in DESIGNS.items():
        client = LLMClient(EmbeddedBackend(options), load_prompt(settings.prompt), cache=store)
        enriched = llm_columns(posts, CONTENT_EMBEDDING.groups, client).posts
        make = partial(CONTENT_EMBEDDING.make, settings)
        oof[label] = cross_validate(label, make, enriched, folds).oof_log
    (old, new) = DESIGNS
    intervals, delta = bootstrap_intervals(y_log, oof[new], oof[old], seed=settings.seed)
    before, _ = bootstrap_intervals(y_log, oof[old], seed=settings.seed)
    for label, stats in ((old, before), (new, intervals)):
        point, low, high = stats["spearman"]
        print(f"{CONTENT_EMBEDDING.name}, {label}: Spearman {point:.3f} [{low:.3f}, {high:.3f}]")
    print("one-pass - two-pass (paired: same folds, same resamples):")
    for metric in ("spearman", "rmse"):
        point, low, high = delta[metric]
        print(f"  Δ {metric} {point:+.3f} [{low:+.3f}, {high:+.3f}]")


if __name__ == "__main__":
    main()
