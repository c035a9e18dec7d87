"""Load, validate, clean, deduplicate and split the r/askscience posts.

Columns that are never features, and why:
- `Unnamed: 0`: the scraper's row index. It is ordered by how posts were collected and correlates
  -0.80 (Spearman, raw rows) with score, so any model that sees it learns the sampling, not the post.
- `upvote_ratio`: known only after people have voted; at prediction time it does not exist.
- `author`: an identity, not content; it would memorise prolific posters.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from hybrid_scorer.config import DEFAULT_SEED
from hybrid_scorer.errors import HybridScorerError
from hybrid_scorer.target import log_target

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("title", "body", "tag", "datetime", "score", "url")
REMOVED_MARKERS = {"[removed]", "[deleted]"}

_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\((?:https?://|www\.)[^)\s]*\)")
_BARE_URL = re.compile(r"(?:https?://|www\.)\S+")
_REDDIT_ID = re.compile(r"/comments/([a-z0-9]+)")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# An edit ("EDIT: thanks for all the answers!") is written after the post went up, often because it did
# well (`python scripts/traps.py` counts them and their scores in reports/traps.md), so it is never there
# when a post is scored: the body is cut at the first line that starts one, in training and serving alike.
_EDIT_LINE = re.compile(r"^[ \t*_#>~]*(?:edit|update|eta)\b", re.IGNORECASE | re.MULTILINE)


class DataValidationError(HybridScorerError, ValueError):
    """The input file cannot be used as it is; the message names the file, column or row and the fix."""


@dataclass
class DataReport:
    """What loading and cleaning did to the file, so nothing is dropped silently."""

    path: str
    rows_read: int = 0
    dropped_bad_score: int = 0
    dropped_bad_score_examples: list[str] = field(default_factory=list)
    dropped_empty_title: int = 0
    removed_bodies: int = 0
    edited_bodies: int = 0
    duplicates_removed: int = 0
    duplicate_max_relative_score_spread: float = 0.0
    rows_kept: int = 0
    sha256: str = ""

    def summary(self) -> str:
        return (
            f"{self.path}: read {self.rows_read} rows; dropped {self.dropped_bad_score} with an unusable score"
            f"{' (e.g. ' + ', '.join(self.dropped_bad_score_examples) + ')' if self.dropped_bad_score else ''}"
            f" and {self.dropped_empty_title} with an empty title; removed {self.duplicates_removed} duplicate"
            f" snapshots (max score spread within a post {self.duplicate_max_relative_score_spread:.2%});"
            f" {self.removed_bodies} bodies were [removed]/[deleted], {self.edited_bodies} cut at an edit written"
            f" after posting; kept {self.rows_kept} posts"
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def post_id_from_url(url: str) -> str:
    """The reddit id in the URL (stable across re-scrapes); a hash of the URL when there is none."""
    match = _REDDIT_ID.search(url or "")
    if match:
        return match.group(1)
    return "url-" + hashlib.sha1((url or "").encode()).hexdigest()[:10]


def read_csv_text(path: Path, where_to_get_it: str) -> pd.DataFrame:
    """A CSV file's cells as text (empty cells as ""); a path that is no readable CSV file is a
    DataValidationError naming it (`where_to_get_it`: the fix when it is not there)."""
    if path.is_dir():
        raise DataValidationError(f"{path}: a directory, not a CSV file. {where_to_get_it}")
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found. {where_to_get_it}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV file ({exc}).") from exc


def load_posts(path: Path | str, report: DataReport | None = None) -> pd.DataFrame:
    """Read and validate the CSV into (post_id, title, body, flair, created_utc, score).

    Raises DataValidationError naming the file, column and row when the file cannot be used.
    Rows whose score is missing or not a number are dropped, counted and logged.
    """
    path = Path(path)
    report = report if report is not None else DataReport(path=str(path))
    raw = read_csv_text(path, "Put askscience_data.csv there, or pass --data PATH / set ASKSCIENCE_CSV.")
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {missing}; the file must have columns {list(REQUIRED_COLUMNS)}"
            f" (found {list(raw.columns)})."
        )
    report.rows_read = len(raw)
    report.sha256 = file_sha256(path)

    created = pd.to_datetime(raw["datetime"], errors="coerce", utc=True)
    bad_dates = created.isna()
    if bad_dates.any():
        row = int(np.flatnonzero(bad_dates.to_numpy())[0])
        raise DataValidationError(
            f"{path}: column 'datetime' row {row + 2} (line in file) has {raw['datetime'].iloc[row]!r},"
            f" which is not a date; expected e.g. '2022-12-09 02:52:07' (UTC). {int(bad_dates.sum())} row(s)"
            " are affected."
        )
    score = pd.to_numeric(raw["score"], errors="coerce")
    post_ids = raw["url"].map(post_id_from_url)
    # reddit floors post scores at 0; a negative or non-finite value is a broken row, not a score
    bad_score = score.isna() | ~np.isfinite(score.fillna(0.0)) | (score < 0)
    report.dropped_bad_score = int(bad_score.sum())
    report.dropped_bad_score_examples = post_ids[bad_score].head(5).tolist()
    if report.dropped_bad_score:
        log.warning(
            "%s: dropped %d row(s) whose 'score' is missing, negative or not a number (first ids: %s)",
            path,
            report.dropped_bad_score,
            ", ".join(report.dropped_bad_score_examples),
        )
    posts = pd.DataFrame(
        {
            "post_id": post_ids,
            "title": raw["title"],
            "body": raw["body"],
            "flair": raw["tag"].fillna(""),  # in the file, no tag means posted without a flair
            "created_utc": created,
            "score": score,
        }
    )[~bad_score.to_numpy()]
    empty_title = posts["title"].str.strip() == ""
    report.dropped_empty_title = int(empty_title.sum())
    return posts[~empty_title].reset_index(drop=True)


def clean_text(text: str) -> str:
    """Readable plain text: HTML entities decoded, markdown links reduced to their text, URLs and
    [removed]/[deleted] markers dropped, whitespace collapsed. Case is kept (TF-IDF lowercases itself)."""
    return clean_decoded(html.unescape(text or ""))


def clean_decoded(text: str) -> str:
    """clean_text of a text whose entities are decoded already (decoding twice would turn a "&lt;" the
    author wrote into "<"): a cleaned body without one of its parts (steering.py)."""
    if text.strip() in REMOVED_MARKERS:
        return ""
    if "http" in text or "www." in text:  # both patterns start with one of them: most texts skip their scans
        text = _BARE_URL.sub(" ", _MARKDOWN_LINK.sub(r"\1", text))
    return " ".join(text.split())  # str.split's whitespace is the pattern \s's (both Py_UNICODE_ISSPACE)


def edit_start(body: str) -> int | None:
    """Where the body's first edit starts (a line beginning "EDIT", "Update", "ETA"), if it has one."""
    match = _EDIT_LINE.search(body)
    return match.start() if match else None


def without_edits(body: str) -> str:
    """The body as it was posted: cut at its first edit. A body that begins with its edit is cut whole:
    what follows a first-line edit in this data is mostly more of it ("Edit 2: ...") or the discussion the
    post drew, written after the votes (`python scripts/traps.py` counts these posts)."""
    start = edit_start(body)
    return body if start is None else body[:start].rstrip()


def clean_fields(title: str, body: str) -> tuple[str, str, str]:
    """(title_clean, body_clean, body) of one post: what `clean` adds to every row, and what the row
    path of serving computes for one post. `body` is the raw body with HTML entities decoded, cut at its
    first edit."""
    return _fields(title, html.unescape(body or ""))


def _fields(title: str, decoded_body: str) -> tuple[str, str, str]:
    body = without_edits(decoded_body)
    return clean_text(title), clean_decoded(body), body


def clean(posts: pd.DataFrame, report: DataReport | None = None) -> pd.DataFrame:
    """Add cleaned text columns; the raw `body` stays for structure features (links, paragraphs)."""
    out = posts.copy()
    bodies = [html.unescape(b) for b in out["body"].fillna("")]
    edited = sum(edit_start(b) is not None for b in bodies)
    fields = [_fields(t, b) for t, b in zip(out["title"], bodies, strict=True)]
    out["title_clean"], out["body_clean"], out["body"] = ([f[i] for f in fields] for i in range(3))
    out["body_removed"] = out["body"].str.strip().isin(REMOVED_MARKERS)
    if report is not None:
        report.removed_bodies = int(out["body_removed"].sum())
        report.edited_bodies = int(edited)
    return out


def deduplicate(posts: pd.DataFrame, report: DataReport | None = None) -> pd.DataFrame:
    """One row per reddit post. Re-scraped snapshots of a post differ only by a few votes, so we keep
    the first snapshot in file order (deterministic) and record how far the dropped ones disagreed."""
    duplicated = posts.duplicated("post_id", keep="first")
    if report is not None:
        report.duplicates_removed = int(duplicated.sum())
        groups = posts[posts["post_id"].isin(posts.loc[duplicated, "post_id"])].groupby("post_id")["score"]
        spread = (groups.max() - groups.min()) / groups.max().clip(lower=1)
        report.duplicate_max_relative_score_spread = float(spread.max()) if len(spread) else 0.0
    return posts[~duplicated].reset_index(drop=True)


def prepare_posts(path: Path | str) -> tuple[pd.DataFrame, DataReport]:
    """load -> clean -> deduplicate, with a report of every row that was dropped and why."""
    report = DataReport(path=str(path))
    posts = deduplicate(clean(load_posts(path, report), report), report)
    report.rows_kept = len(posts)
    log.info(report.summary())
    return posts, report


def normalized_title(title: str) -> str:
    """Reposts share a title up to case and punctuation; this is the grouping key for folds."""
    return _NON_ALNUM.sub(" ", (title or "").lower()).strip()


def fold_groups(posts: pd.DataFrame) -> np.ndarray:
    """Group ids such that a post and its reposts (same normalized title) stay in one fold."""
    keys = posts["title"].map(normalized_title)
    return pd.factorize(keys)[0]


def grouped_folds(
    posts: pd.DataFrame, n_folds: int = 5, seed: int = DEFAULT_SEED
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds grouped by normalized title and stratified on log-score deciles (the score is bimodal,
    so unstratified folds can differ a lot in their share of 'top' posts)."""
    groups = fold_groups(posts)
    distinct = int(groups.max()) + 1 if len(groups) else 0
    if distinct < n_folds:
        raise DataValidationError(
            f"{len(posts)} post(s) with {distinct} distinct title(s) are too few for {n_folds}"
            f" folds: give at least {n_folds} posts with different titles (or set HYBRID_SCORER_N_FOLDS lower, >= 2)"
        )
    strata = pd.qcut(log_target(posts), q=10, labels=False, duplicates="drop")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(posts)), strata, groups=groups))
