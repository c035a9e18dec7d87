"""What the LLM actually answered: rating distributions, how the probability-weighted expectations
correlate with log score, and how often its topic agrees with the post's flair.

Reads reports/extraction/assessments.csv (written by `hybrid-scorer extract`). Usage:
python scripts/llm_outputs.py [--data CSV] [--assessments PATH]"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.llm.schema import RATING_FIELDS, Topic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--assessments", default="reports/extraction/assessments.csv")
    args = parser.parse_args()
    posts, _ = prepare_posts(get_settings(data_path=args.data).data_path)
    table = pd.read_csv(args.assessments).merge(posts[["post_id", "score", "flair"]], on="post_id")
    log_score = np.log1p(table["score"])
    print(f"{len(table)} assessed posts; failures: {int(table['failure'].notna().sum())}")
    for name in RATING_FIELDS:
        counts = table[name].value_counts().sort_index().astype(int).to_dict()
        expected = table[f"{name}_expected"]
        rho = spearmanr(expected, log_score).statistic
        print(
            f"{name:<20} argmax counts {counts}; expectation {expected.min():.2f}-{expected.max():.2f},"
            f" Spearman with log1p(score) {rho:.3f}"
        )
    shares = table["topic"].value_counts(normalize=True).head(3)
    print("most frequent topics: " + ", ".join(f"{t} {s:.0%}" for t, s in shares.items()))
    flair = table["flair"].map(normalize_flair)
    comparable = flair.isin([t.value for t in Topic if t is not Topic.OTHER])
    agreement = (table.loc[comparable, "topic"] == flair[comparable]).mean()
    majority = flair[comparable].value_counts(normalize=True).iloc[0]
    print(
        f"topic == flair on {int(comparable.sum())} posts whose flair is a schema topic: {agreement:.1%}"
        f" (always answering the most common flair: {majority:.1%})"
    )


if __name__ == "__main__":
    main()
