"""The small LightGBM sweep behind the defaults in `hybrid_scorer/model.py`: content model, grouped folds.

A handful of settings, not a search: the folds are the evaluation folds, so a wide search here would
tune to them. Usage: python scripts/sweep.py [--data CSV]"""

from __future__ import annotations

import argparse
from typing import Any

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import grouped_folds, prepare_posts
from hybrid_scorer.evaluation import cross_validate
from hybrid_scorer.features.matrix import CONTENT_GROUPS
from hybrid_scorer.model import HybridScorer

TRIALS: list[tuple[dict[str, Any], int, int]] = [  # (LightGBM params over the defaults, rounds, TF-IDF terms)
    ({"num_leaves": 15, "feature_fraction": 0.5}, 500, 2000),
    ({"num_leaves": 7, "feature_fraction": 0.5}, 800, 2000),
    ({"num_leaves": 7, "feature_fraction": 0.2}, 800, 2000),  # the defaults
    ({"num_leaves": 31, "min_data_in_leaf": 10, "feature_fraction": 0.2}, 500, 2000),
    ({"num_leaves": 7, "feature_fraction": 0.2, "learning_rate": 0.02}, 1500, 4000),
    ({"num_leaves": 7, "feature_fraction": 0.1}, 1000, 1000),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    settings = get_settings(data_path=parser.parse_args().data)
    posts, _ = prepare_posts(settings.data_path)
    folds = grouped_folds(posts, settings.n_folds, settings.seed)
    for params, rounds, terms in TRIALS:

        def make(params: dict[str, Any] = params, rounds: int = rounds, terms: int = terms) -> HybridScorer:
            return HybridScorer(
                CONTENT_GROUPS,
                params=params,
                num_boost_round=rounds,
                feature_options={"tfidf": {"max_features": terms}},
                seed=settings.seed,
            )

        result = cross_validate("sweep", make, posts, folds, progress=False)
        print(
            f"{params} rounds={rounds} tfidf_terms={terms}: Spearman {result.mean('spearman'):.3f}"
            f" RMSE {result.mean('rmse'):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
