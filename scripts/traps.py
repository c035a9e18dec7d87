"""What the known traps of this dataset do to the numbers, side by side with the honest protocol.

Each row is the content model (text stats + TF-IDF + meta) on 5 folds, changing one thing:
- duplicates across folds: no URL deduplication and plain shuffled KFold (snapshots of one post land
  in train and test);
- upvote_ratio as a feature (only known after voting);
- the `Unnamed: 0` row index as a feature (the scraper's order, Spearman -0.80 with score);
- time_trend (posting year: old 'top' posts vs new posts, a sampling artifact);
and two checks of a quieter proxy for time: the 194 posts without a flair (2010-2022, 180 of them before 2013).
Writes reports/traps.md. Usage: python scripts/traps.py [--data CSV]"""

from __future__ import annotations

import argparse
import html
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import KFold

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import clean, clean_text, edit_start, grouped_folds, load_posts, post_id_from_url, prepare_posts
from hybrid_scorer.evaluation import cross_validate
from hybrid_scorer.features.base import PostRow, StatelessGroup
from hybrid_scorer.features.matrix import CONTENT_GROUPS, GROUPS
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.quality import METRICS


class _RawColumn(StatelessGroup):
    column: ClassVar[str] = ""

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        return posts[self.column].to_numpy(float).reshape(-1, 1)

    def transform_row(self, row: PostRow) -> np.ndarray:
        raise NotImplementedError("a trap measured in cross-validation only, never served")

    @property
    def feature_names(self) -> list[str]:
        return [self.name]


class UpvoteRatio(_RawColumn):
    name: ClassVar[str] = "leak_upvote_ratio"
    column: ClassVar[str] = "upvote_ratio"


class RowIndex(_RawColumn):
    name: ClassVar[str] = "leak_row_index"
    column: ClassVar[str] = "Unnamed: 0"


def _raw(path: Path) -> pd.DataFrame:
    """The file's rows as scraped (duplicates, leaky columns and edits in), each with its post id."""
    raw = pd.read_csv(path)
    return raw.assign(post_id=raw["url"].map(post_id_from_url))


def _with_leaky_columns(posts: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    leaky = raw.drop_duplicates("post_id")[["post_id", "upvote_ratio", "Unnamed: 0"]]
    return posts.merge(leaky, on="post_id", how="left", validate="many_to_one")


def _facts(posts: pd.DataFrame, no_flair: pd.Series, raw: pd.DataFrame) -> list[str]:
    """The facts about the data that the traps rest on (written above the table, so docs can cite them)."""
    score = posts["score"]
    raw_rho = spearmanr(raw["Unnamed: 0"], raw["score"]).statistic
    rho = spearmanr(posts["Unnamed: 0"], score).statistic
    years = posts.loc[no_flair, "created_utc"].dt.year
    return [
        f"- rows: {len(raw):,}; posts after removing re-scraped duplicates: {len(posts):,}"
        f" ({len(raw) - len(posts):,} duplicate rows)",
        f"- scores: {score.min():.0f} to {score.max():,.0f}, median {score.median():.0f};"
        f" above 1,000: {(score > 1000).mean():.1%}",
        f"- Spearman(`Unnamed: 0`, score): {raw_rho:.2f} on the raw rows, {rho:.2f} on the deduplicated posts",
        f"- posts without a flair: {int(no_flair.sum())}, posted {years.min()}-{years.max()}"
        f" ({int((years < 2013).sum())} before 2013), median score {score[no_flair].median():.0f}",
        _edit_fact(raw),
        _title_length_fact(posts),
    ]


def _title_length_fact(posts: pd.DataFrame) -> str:
    """How the title's length goes with the score: what a longer title buys the content model (issue 30's
    title attacks move it through this, whatever the added words say), and how much of it is the
    sampling rather than the posts: within the newest year, which no "top" selection shaped."""
    length, score = posts["title_clean"].str.len(), posts["score"]
    newest = posts["created_utc"].dt.year == posts["created_utc"].dt.year.max()
    return (
        f"- title length (characters) and score: Spearman {spearmanr(length, score).statistic:+.2f} over all posts,"
        f" {spearmanr(length[newest], score[newest]).statistic:+.2f} within"
        f" {posts.loc[newest, 'created_utc'].dt.year.iloc[0]} ({int(newest.sum()):,} posts);"
        f" median score {score[length < 50].median():,.0f} for titles under 50 characters,"
        f" {score[length >= 200].median():,.0f} for 200 or more"
    )


def _with_edits(posts: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """The posts with their bodies as scraped, edits written after posting left in (cleaned otherwise as
    the loader cleans: `clean_text`)."""
    first = raw.drop_duplicates("post_id")[["post_id", "body"]]
    scraped = posts[["post_id"]].merge(first, on="post_id", how="left", validate="one_to_one")
    bodies = scraped["body"].fillna("").map(html.unescape)
    return posts.assign(body=bodies.to_numpy(), body_clean=bodies.map(clean_text).to_numpy())


def _edit_fact(raw: pd.DataFrame) -> str:
    """Posts whose body carries an edit written after posting (cut by the loader): how they scored, and
    how many bodies begin with their edit (so nothing of them is left: what follows a first-line edit is
    mostly more of it, "Edit 2: ...", or the discussion the post drew)."""
    posts = raw.drop_duplicates("post_id")
    bodies = [html.unescape(body) for body in posts["body"].fillna("")]
    starts = [edit_start(body) for body in bodies]
    edited = np.array([start is not None for start in starts])
    first = np.array([start is not None and not b[:start].strip() for b, start in zip(bodies, starts, strict=True)])
    return (
        f"- posts whose body has an edit (cut at it by the loader): {int(edited.sum())}, median score"
        f" {posts.loc[edited, 'score'].median():,.0f} (the others: {posts.loc[~edited, 'score'].median():,.0f});"
        f" {int(first.sum())} of them begin with it, so their whole body is cut (median score"
        f" {posts.loc[first, 'score'].median():,.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--out", default="reports/traps.md")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    GROUPS.update({UpvoteRatio.name: UpvoteRatio, RowIndex.name: RowIndex})

    raw = _raw(settings.data_path)
    honest, _ = prepare_posts(settings.data_path)
    honest = _with_leaky_columns(honest, raw)
    honest_folds = grouped_folds(honest, settings.n_folds, settings.seed)
    undeduplicated = clean(load_posts(settings.data_path))
    no_flair = honest["flair"].fillna("").str.strip() == ""
    facts = _facts(honest, no_flair, raw)
    print("\n".join(facts), flush=True)
    with_flair = honest[~no_flair].reset_index(drop=True)
    flair_merged = honest.assign(flair=honest["flair"].where(~no_flair, "other"))
    random_folds = list(KFold(settings.n_folds, shuffle=True, random_state=settings.seed).split(undeduplicated))
    rows = [
        ("honest: deduplicated, grouped folds (the protocol used everywhere)", honest, honest_folds, ()),
        ("duplicates across folds (no dedup, shuffled KFold)", undeduplicated, random_folds, ()),
        ("+ upvote_ratio (known only after voting)", honest, honest_folds, (UpvoteRatio.name,)),
        ("+ `Unnamed: 0` row index", honest, honest_folds, (RowIndex.name,)),
        ("+ time_trend (posting year)", honest, honest_folds, ("time_trend",)),
        ("+ edits written after posting left in the body", _with_edits(honest, raw), honest_folds, ()),
        (
            "all four traps together",
            _with_leaky_columns(undeduplicated, raw),
            random_folds,
            (UpvoteRatio.name, RowIndex.name, "time_trend"),
        ),
        (
            "honest, without the posts that have no flair",
            with_flair,
            grouped_folds(with_flair, settings.n_folds, settings.seed),
            (),
        ),
        ("honest, no-flair posts merged into flair 'other'", flair_merged, honest_folds, ()),
    ]
    lines = [
        f"# What the data traps do to the numbers\n\nGenerated by `python scripts/traps.py`; content model "
        f"(text stats + TF-IDF + meta), {settings.n_folds} folds, seed {settings.seed}; mean ± std over folds.\n",
        "## The data\n",
        *facts,
        "\n## The traps\n",
        "| protocol | posts | Spearman | RMSE log1p | MAE log1p | R2 |",
        "|---|---|---|---|---|---|",
    ]
    for name, posts, folds, extra in rows:
        result = cross_validate(
            name, lambda e=extra: HybridScorer((*CONTENT_GROUPS, *e), seed=settings.seed), posts, folds
        )
        cells = " | ".join(f"{result.mean(m):.3f} ± {result.std(m):.3f}" for m in METRICS)
        lines.append(f"| {name} | {len(posts)} | {cells} |")
        print(lines[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
