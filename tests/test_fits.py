"""The fit cache (fits.py): a stored cross-fit is read back only for the same estimator, folds and posts,
and what is read back is what a fresh fit gives."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_scorer import fits
from hybrid_scorer.calibrated import CalibratedScorer
from hybrid_scorer.features.llm import EMBEDDING_COLUMN
from hybrid_scorer.fits import cross_fit
from hybrid_scorer.intervals import heads_for
from hybrid_scorer.model import HybridScorer


def _content(rounds: int = 20) -> HybridScorer:
    return HybridScorer(("text_stats", "meta"), num_boost_round=rounds, heads=heads_for("cqr"), seed=3)


def _with_embeddings(posts: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return posts.assign(**{EMBEDDING_COLUMN: [rng.normal(size=8).astype(np.float32) for _ in range(len(posts))]})


def test_a_stored_cross_fit_is_what_a_fresh_one_gives(posts: pd.DataFrame, tmp_path: Path) -> None:
    memory = tmp_path / "fits"  # tmp_path holds the fixture's CSV too
    first = cross_fit(_content(), posts, 3, 5, memory=memory)
    again = cross_fit(_content(), posts, 3, 5, memory=memory)
    fresh = cross_fit(_content(), posts, 3, 5)  # no memory: fitted here
    assert not first.reused and again.reused and not fresh.reused and fresh.stored is None
    assert first.stored == again.stored and first.stored is not None and first.stored.parent == memory
    np.testing.assert_array_equal(again.cv.oof_log, fresh.cv.oof_log)
    assert again.cv.fold_metrics == fresh.cv.fold_metrics
    assert again.cv.oof_heads.keys() == fresh.cv.oof_heads.keys() == set(heads_for("cqr"))
    for head, values in fresh.cv.oof_heads.items():
        np.testing.assert_array_equal(again.cv.oof_heads[head], values)
    read, fitted = again.scorer.score(posts), fresh.scorer.score(posts)
    np.testing.assert_allclose(read.log, fitted.log, rtol=0, atol=1e-12)
    for head, values in fitted.heads.items():
        np.testing.assert_allclose(read.heads[head], values, rtol=0, atol=1e-12)


def test_anything_the_fit_depends_on_is_a_new_fit(posts: pd.DataFrame, tmp_path: Path) -> None:
    memory = tmp_path / "fits"  # tmp_path holds the fixture's CSV too
    cross_fit(_content(), posts, 3, 5, memory=memory)
    relabelled = posts.assign(score=posts["score"].to_numpy()[::-1])
    for changed in (
        cross_fit(_content(rounds=21), posts, 3, 5, memory=memory),  # a parameter
        cross_fit(_content(), posts, 4, 5, memory=memory),  # the folds
        cross_fit(_content(), posts, 3, 6, memory=memory),  # their seed
        cross_fit(_content(), relabelled, 3, 5, memory=memory),  # the labels
        cross_fit(_content(), posts.iloc[::-1].reset_index(drop=True), 3, 5, memory=memory),  # the order
    ):
        assert not changed.reused
    assert len([p for p in memory.iterdir() if not p.name.startswith(".")]) == 6


def test_llm_columns_are_part_of_the_key_only_for_a_model_that_reads_them(posts: pd.DataFrame, tmp_path: Path) -> None:
    """`train --llm none` and `ablate` share the content model's fit although ablate's posts carry LLM
    columns; a model of the embedding fits again when the embeddings differ."""
    memory = tmp_path / "fits"  # tmp_path holds the fixture's CSV too
    cross_fit(_content(), posts, 3, 5, memory=memory)
    assert cross_fit(_content(), _with_embeddings(posts), 3, 5, memory=memory).reused
    embedding = HybridScorer(("text_stats", "llm_embedding"), num_boost_round=10, seed=3)
    options = {"llm_embedding": {"n_components": 4, "seed": 0}}
    embedding.set_params(feature_options=options)
    assert not cross_fit(embedding, _with_embeddings(posts, 0), 3, 5, memory=memory).reused
    assert cross_fit(embedding, _with_embeddings(posts, 0), 3, 5, memory=memory).reused
    assert not cross_fit(embedding, _with_embeddings(posts, 1), 3, 5, memory=memory).reused


def test_the_source_is_part_of_the_key(posts: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = tmp_path / "fits"  # tmp_path holds the fixture's CSV too
    cross_fit(_content(), posts, 3, 5, memory=memory)
    monkeypatch.setattr(fits, "_code_digest", lambda: "another version of the package")
    assert not cross_fit(_content(), posts, 3, 5, memory=memory).reused


def test_an_interrupted_store_is_never_read_and_old_entries_go(
    posts: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = tmp_path / "fits"  # tmp_path holds the fixture's CSV too
    key = fits.fit_key(_content(), posts, 3, 5)
    (memory / f".staging-{key}").mkdir(parents=True)  # what a killed run leaves: never renamed into place
    assert not cross_fit(_content(), posts, 3, 5, memory=memory).reused
    monkeypatch.setattr(fits, "KEEP", 2)
    for rounds in (5, 6, 7):
        cross_fit(_content(rounds), posts, 3, 5, memory=memory)
    kept = [p.name for p in memory.iterdir() if not p.name.startswith(".")]
    assert len(kept) == 2 and fits.fit_key(_content(7), posts, 3, 5) in kept


def test_a_calibrated_scorer_says_when_its_cross_fit_was_read(posts: pd.DataFrame, tmp_path: Path) -> None:
    memory = tmp_path / "fits"  # tmp_path holds the fixture's CSV too
    fresh = CalibratedScorer(_content(), "cqr", n_folds=3, seed=5, n_boot=50, memory=memory).fit(posts)
    read = CalibratedScorer(_content(), "cqr", n_folds=3, seed=5, n_boot=50, memory=memory).fit(posts)
    assert not fresh.reused_ and read.reused_
    assert read.scorer_.manifest_ == fresh.scorer_.manifest_  # the calibration and metrics too
