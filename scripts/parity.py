"""Row path vs batch path over every post of the data: the feature vector serving builds for a post (raw
fields -> PostInput -> ServedPost -> LLM outputs from the cache -> transform_row) against the one training
built (prepare_posts -> llm_columns -> transform), and the log scores of both, for the content model and
the served hybrid, each fitted here on all posts. Exits 1 when any post differs by more than --tolerance
or a value is missing in one path only. Needs the LLM cache (`hybrid-scorer extract`).

Usage: python scripts/parity.py [--data CSV] [--llm SPEC|none] [--tolerance 1e-9]"""

from __future__ import annotations

import argparse
import sys
import time

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import deduplicate, load_posts, prepare_posts
from hybrid_scorer.pipeline import client_for, llm_columns
from hybrid_scorer.serving.parity import check_parity, served_rows
from hybrid_scorer.specs import SERVED, groups_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument(
        "--llm", default="embedded", help="LLM spec of the cached LLM outputs, or 'none' (content only)"
    )
    parser.add_argument("--tolerance", type=float, default=1e-9, help="largest allowed absolute difference")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    raw = deduplicate(load_posts(settings.data_path))
    client = client_for(args.llm, settings)
    configs = {role: c for role, c in SERVED.items() if client is not None or not c.uses_llm}
    enriched = llm_columns(posts, groups_of(configs.values()), client, progress=False).posts
    print(f"{'model':<8} {'posts':>6} {'features':>8} {'max |feature diff|':>19} {'NaN mismatches':>15}"
          f" {'max |log diff|':>15} {'unknown flair':>14} {'seconds':>8}")  # fmt: skip
    ok = True
    for role, config in configs.items():
        started = time.perf_counter()
        model = config.make_scorer(settings).fit(enriched)
        parity = check_parity(model, enriched, served_rows(raw, client, config.groups))
        ok &= parity.holds(args.tolerance)
        print(
            f"{role:<8} {parity.posts:>6} {parity.features:>8} {parity.max_feature_diff:>19.2e}"
            f" {parity.nan_mismatches:>15} {parity.max_log_diff:>15.2e} {parity.max_unknown_flair_log_diff:>14.2e}"
            f" {time.perf_counter() - started:>8.1f}"
        )
    print("parity holds" if ok else f"PARITY FAILS at tolerance {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
