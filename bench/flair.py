"""A caller who does not know the flair: how far is a prediction without the flair from the same post's
prediction with its flair? Over real posts that have a flair, the mean difference in log1p(score) should
be within +/-0.1 (before flair-unknown became its own input it was about -2.5: such posts were scored as
the old no-flair posts, median score 1). Uses the trained models (`make run`) and the LLM cache.

Usage: python bench/flair.py [--data CSV] [-n 150]"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.features.meta import NO_FLAIR, normalize_flair
from hybrid_scorer.serving import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--model-dir", type=Path, help="default: models/current")
    parser.add_argument("-n", type=int, default=150)
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    flaired = posts[posts["flair"].map(normalize_flair) != NO_FLAIR].sample(args.n, random_state=0)
    log = Path(tempfile.mkdtemp())
    for llm in ("none", None):
        predictor = Predictor(args.model_dir, settings, llm=llm, log_path=log / "p.jsonl", llm_budget_ms=60_000).warm()
        label = "content model" if llm == "none" else "hybrid (LLM answers cached)"
        with_flair, without, posted_without = [], [], []
        for row in flaired.itertuples():
            post = {"title": row.title, "body": row.body, "created_utc": row.created_utc.isoformat()}
            with_flair.append(predictor.predict({**post, "flair": row.flair}).log_score)
            without.append(predictor.predict(post).log_score)
            posted_without.append(predictor.predict({**post, "flair": ""}).log_score)
        diff = np.array(without) - np.array(with_flair)
        legacy = np.array(posted_without) - np.array(with_flair)
        print(f"{label}: {args.n} posts with a flair, mean log1p(score) difference without vs with the flair")
        print(f"  flair unknown (omitted):      {diff.mean():+.3f} (sd {diff.std():.3f})")
        print(f"  flair '' (posted without one): {legacy.mean():+.3f}  <- what omitting it meant before")
        sky = {"title": "Why is the sky blue?", "body": ""}
        scores = {
            f: predictor.predict({**sky, **({"flair": f} if f is not None else {})}).score
            for f in (None, "Physics", "")
        }
        print(
            f"  'Why is the sky blue?': unknown flair {scores[None]:.0f}, Physics {scores['Physics']:.0f},"
            f" no flair {scores['']:.0f}"
        )


if __name__ == "__main__":
    main()
