from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_scorer.data import (
    DataReport,
    DataValidationError,
    clean_fields,
    clean_text,
    deduplicate,
    grouped_folds,
    load_posts,
    normalized_title,
    post_id_from_url,
    prepare_posts,
)
from tests.conftest import synthetic_frame


def test_missing_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"nope\.csv: file not found.*--data"):
        load_posts(tmp_path / "nope.csv")


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    synthetic_frame(10).drop(columns=["score"]).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['score'\]"):
        load_posts(path)


def test_unparsable_datetime_names_column_and_row(tmp_path: Path) -> None:
    frame = synthetic_frame(10)
    frame.loc[3, "datetime"] = "yesterday-ish"
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"column 'datetime' row 5 .*'yesterday-ish'"):
        load_posts(path)


def test_non_numeric_scores_are_counted_reported_and_dropped(tmp_path: Path) -> None:
    frame = synthetic_frame(20)
    frame["score"] = frame["score"].astype(object)
    frame.loc[[2, 7, 9], "score"] = ["lots", "", -3]
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    report = DataReport(path=str(path))
    posts = load_posts(path, report)
    assert report.dropped_bad_score == 3
    assert report.dropped_bad_score_examples == [post_id_from_url(frame.loc[i, "url"]) for i in (2, 7, 9)]
    assert len(posts) == len(frame) - 3
    assert "dropped 3 with an unusable score" in report.summary()


def test_leaky_columns_never_reach_the_posts(posts: pd.DataFrame) -> None:
    assert not {"Unnamed: 0", "upvote_ratio", "author"} & set(posts.columns)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a &amp; b &gt; c", "a & b > c"),
        ("see [this paper](https://x.org/p?q=1) now", "see this paper now"),
        ("bare https://example.com/a?b=c link", "bare link"),
        ("[removed]", ""),
        (" [deleted] ", ""),
        ("many \n\n  spaces\t", "many spaces"),
        ("Keeps Case", "Keeps Case"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("body", "posted"),
    [
        ("Why is it so?\n\nEDIT: front page, thanks for the gold!", "Why is it so?"),
        ("Why?\n\n**Edit 2**: typo\n\nmore thanks", "Why?"),
        ("How do tides work?\nUpdate: answered, thank you all", "How do tides work?"),
        ("What is it?\n\n> ETA: a link", "What is it?"),
        ("Why do I edit my posts so often? And update them?", "Why do I edit my posts so often? And update them?"),
        ("Updates to GPS satellites: how are they sent?", "Updates to GPS satellites: how are they sent?"),
    ],
)
def test_an_edit_written_after_posting_is_cut_from_the_body(body: str, posted: str) -> None:
    """A line that starts an edit ends the body as posted; "edit" or "update" inside a sentence, or a
    word that merely begins with them, does not."""
    _, body_clean, raw = clean_fields("A title?", body)
    assert raw == posted and body_clean == posted


def test_entities_are_decoded_once_in_the_body_as_in_the_title() -> None:
    """Reddit escapes a body once: "&amp;lt;" is the "&lt;" its author typed, and stays that."""
    title, body_clean, raw = clean_fields("a &amp;lt; b?", "x &amp;lt; y")
    assert (title, body_clean, raw) == ("a &lt; b?", "x &lt; y", "x &lt; y")


def test_edits_are_cut_and_counted_when_the_file_is_cleaned(csv_path: Path) -> None:
    posts, report = prepare_posts(csv_path)
    assert report.edited_bodies > 0 and "cut at an edit" in report.summary()
    assert not posts["body"].str.contains("EDIT").any() and not posts["body_clean"].str.contains("EDIT").any()


def test_removed_bodies_are_flagged(posts: pd.DataFrame) -> None:
    removed = posts[posts["body_removed"]]
    assert len(removed) > 0
    assert (removed["body_clean"] == "").all()


def test_post_id_is_the_reddit_id_or_a_stable_hash() -> None:
    assert post_id_from_url("https://www.reddit.com/r/askscience/comments/zgjeba/post_viral/") == "zgjeba"
    assert post_id_from_url("https://www.nasa.gov/tv/") == post_id_from_url("https://www.nasa.gov/tv/")
    assert post_id_from_url("https://www.nasa.gov/tv/").startswith("url-")


def test_deduplicate_keeps_first_snapshot_and_reports(csv_path: Path) -> None:
    posts, report = prepare_posts(csv_path)
    assert report.duplicates_removed == 10
    assert posts["post_id"].is_unique
    raw = pd.read_csv(csv_path)
    first = raw.drop_duplicates("url", keep="first").set_index("url")["score"]
    kept = posts.set_index("post_id")["score"]
    for url, score in first.items():
        assert kept[post_id_from_url(url)] == score


def test_deduplicate_on_frame_without_duplicates_is_identity(posts: pd.DataFrame) -> None:
    assert deduplicate(posts).equals(posts)


def _assert_no_leak(posts: pd.DataFrame, folds: list[tuple[np.ndarray, np.ndarray]]) -> None:
    titles = posts["title"].map(normalized_title).to_numpy()
    ids = posts["post_id"].to_numpy()
    seen_test = np.zeros(len(posts), dtype=int)
    for train, test in folds:
        assert not set(ids[train]) & set(ids[test])
        assert not set(titles[train]) & set(titles[test])
        seen_test[test] += 1
    assert (seen_test == 1).all()  # every post is tested exactly once


def test_folds_never_split_a_post_or_its_reposts(posts: pd.DataFrame) -> None:
    _assert_no_leak(posts, grouped_folds(posts, 5, seed=1))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_folds=st.integers(2, 6))
def test_no_leak_property(seed: int, n_folds: int) -> None:
    frame = synthetic_frame(60, seed=seed)
    frame["post_id"] = frame["url"].map(post_id_from_url)
    frame = deduplicate(frame)
    _assert_no_leak(frame, grouped_folds(frame, n_folds, seed=seed))


def test_cleaning_collapses_every_whitespace_the_pattern_did_and_drops_links_alike() -> None:
    """clean_decoded skips the link patterns for a text without "http" or "www." and collapses whitespace
    with str.split: the same text as the patterns it replaced (markdown link to its text, bare URL to a
    space, every run of \\s to one space), on every whitespace code point and on link forms."""
    import re
    import sys

    from hybrid_scorer.data import _BARE_URL, _MARKDOWN_LINK, clean_decoded

    def by_patterns(text: str) -> str:
        return re.sub(r"\s+", " ", _BARE_URL.sub(" ", _MARKDOWN_LINK.sub(r"\1", text))).strip()

    spaces = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(r"\s", c))
    assert spaces == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    texts = [
        f"a{spaces}b{spaces}",
        "see [the paper](https://x.org/a_(b)) and http://y.com/q?x=1, www.z.net.",
        "[text](www.example.com)  and   [not a link](ftp://x)\n\n\tend",
        "no links at all,\u00a0just\u2003spaces\u200b and a zero-width one",
        "HTTP://UPPER.CASE stays",
        "",
    ]
    for text in texts:
        assert clean_decoded(text) == by_patterns(text), repr(text)
