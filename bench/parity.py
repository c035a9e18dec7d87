"""Proof that the row path serving uses equals the batch path training used, post by post.

For each post, the batch path is the training frame (data.prepare_posts, the LLM columns joined by
pipeline.llm_columns) through FeatureMatrix.transform and predict_log; the row path is what a request
goes through: the raw fields validated as a PostInput, cleaned by ServedPost.of, the LLM outputs read by
pipeline.llm_row, then transform_row and score(row); the heads and each feature group's contribution
(explain) are compared too. `tests/test_row_path.py` runs it on the
synthetic fixture; run as a script, it covers every post of the data, for the content model and the
served hybrid, each fitted here on all posts, and exits 1 when any post differs by more than --tolerance
or a value is missing in one path only. Posts of unknown flair (None) are predicted by forests averaged
over the flair levels (marginal.py) in both paths; both are also held to that average's definition, one
row per trained flair level weighted by its share, which the contributions compute. The script needs the
LLM cache (`hybrid-scorer extract`).

Usage: python bench/parity.py [--data CSV] [--llm SPEC|none] [--tolerance 1e-9]"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import deduplicate, load_posts, prepare_posts
from hybrid_scorer.features.base import PostRow
from hybrid_scorer.features.matrix import llm_needs
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.model import HybridScorer, Scored
from hybrid_scorer.pipeline import client_for, llm_columns, llm_row
from hybrid_scorer.serving.predictor import ServedPost
from hybrid_scorer.serving.schemas import PostInput
from hybrid_scorer.specs import SERVED, groups_of


def served_rows(raw: pd.DataFrame, client: LLMClient | None, groups: tuple[str, ...]) -> list[PostRow]:
    """The rows serving builds for these posts: `raw` has the CSV's fields as load_posts reads them (title,
    body, flair, created_utc), LLM outputs come from the client's cache (they must all be there)."""
    needs = llm_needs(groups)
    rows = []
    for title, body, flair, created in zip(raw["title"], raw["body"], raw["flair"], raw["created_utc"], strict=True):
        served = ServedPost.of(PostInput(title=title, body=body, flair=flair, created_utc=created.to_pydatetime()))
        if needs:
            assert client is not None, f"feature groups {groups} need an LLM"
            found = llm_row(client, served.text, needs, cached_only=True)
            if found is None:
                raise LookupError(f"post {title[:60]!r} has no cached LLM outputs: run `hybrid-scorer extract` first")
            served = replace(served, row=replace(served.row, llm=found.values))
        rows.append(served.row)
    return rows


@dataclass
class Parity:
    """How far the row path is from the batch path over `posts` posts (0 everywhere when they agree)."""

    posts: int
    features: int
    max_feature_diff: float  # over non-missing values
    nan_mismatches: int  # values missing in one path and not in the other
    max_log_diff: float  # predict_log vs score(row)
    # the same with the flair unknown, and both against its definition: the average over the trained flair
    # levels, weighted by their shares (K rows per post, as the contributions are computed)
    max_unknown_flair_log_diff: float
    max_head_diff: float  # the model's heads (quantiles, p_top), known and unknown flair
    max_contribution_diff: float  # each feature group's contribution (explain), known and unknown flair
    worst_post: int  # index of the post with the largest feature difference

    def holds(self, tolerance: float = 1e-9) -> bool:
        return (
            self.nan_mismatches == 0
            and self.max_feature_diff <= tolerance
            and self.max_log_diff <= tolerance
            and self.max_unknown_flair_log_diff <= tolerance
            and self.max_head_diff <= tolerance
            and self.max_contribution_diff <= tolerance
        )


def _contributions(scored: Scored) -> np.ndarray:
    """The contributions by group (columns) of each post scored (rows), asked for with contributions=True."""
    assert scored.contributions is not None
    return scored.contributions.to_numpy()


def check_parity(model: HybridScorer, posts: pd.DataFrame, rows: list[PostRow]) -> Parity:
    """Compare both paths on `posts` (the batch frame) and `rows` (the same posts, row path, same order)."""
    batch = model.features_.transform(posts).toarray()
    by_row = np.vstack([model.features_.transform_row(r) for r in rows])
    nan_batch, nan_row = np.isnan(batch), np.isnan(by_row)
    both = ~(nan_batch | nan_row)
    diff = np.where(both, np.abs(batch - by_row), 0.0)
    log_diff = np.abs(model.predict_log(posts) - np.array([model.score(r, heads=False).log[0] for r in rows]))
    unknown = posts.assign(flair=None)
    unknown_rows = [replace(r, flair=None) for r in rows]
    averaged = model.predict_log(unknown)
    unknown_diff = np.maximum(
        np.abs(averaged - np.array([model.score(r, heads=False).log[0] for r in unknown_rows])),
        np.abs(averaged - _contributions(model.score(unknown, heads=False, contributions=True)).sum(axis=1)),
    )
    head_diff = contribution_diff = 0.0
    for frame, each in ((posts, rows), (unknown, unknown_rows)):
        batch_scored = model.score(frame, contributions=True)
        row_scored = [model.score(r, contributions=True) for r in each]
        for head, values in batch_scored.heads.items():
            by_row = np.array([s.post()[1][head] for s in row_scored])
            head_diff = max(head_diff, float(np.abs(values - by_row).max(initial=0.0)))
        by_row_contributions = np.vstack([_contributions(s) for s in row_scored])
        contribution_diff = max(
            contribution_diff, float(np.abs(_contributions(batch_scored) - by_row_contributions).max(initial=0.0))
        )
    return Parity(
        posts=len(rows),
        features=batch.shape[1],
        max_feature_diff=float(diff.max(initial=0.0)),
        nan_mismatches=int((nan_batch != nan_row).sum()),
        max_log_diff=float(log_diff.max(initial=0.0)),
        max_unknown_flair_log_diff=float(unknown_diff.max(initial=0.0)),
        max_head_diff=head_diff,
        max_contribution_diff=contribution_diff,
        worst_post=int(diff.max(axis=1).argmax()) if len(rows) else -1,
    )


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
          f" {'max |log diff|':>15} {'unknown flair':>14} {'heads':>9} {'explain':>9} {'seconds':>8}")  # fmt: skip
    ok = True
    for role, config in configs.items():
        started = time.perf_counter()
        model = config.make_scorer(settings).fit(enriched)
        parity = check_parity(model, enriched, served_rows(raw, client, config.groups))
        ok &= parity.holds(args.tolerance)
        print(
            f"{role:<8} {parity.posts:>6} {parity.features:>8} {parity.max_feature_diff:>19.2e}"
            f" {parity.nan_mismatches:>15} {parity.max_log_diff:>15.2e} {parity.max_unknown_flair_log_diff:>14.2e}"
            f" {parity.max_head_diff:>9.2e} {parity.max_contribution_diff:>9.2e} {time.perf_counter() - started:>8.1f}"
        )
    print("parity holds" if ok else f"PARITY FAILS at tolerance {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
