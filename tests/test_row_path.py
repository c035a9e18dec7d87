"""The row path (one post -> numpy, what serving runs) equals the batch path (DataFrames, what training
ran) post by post, for the content model and the hybrid; bench/parity.py does the same on all posts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.parity import check_parity, served_rows
from hybrid_scorer.config import Settings
from hybrid_scorer.data import deduplicate, load_posts, prepare_posts
from hybrid_scorer.features.matrix import CONTENT_GROUPS
from hybrid_scorer.features.stacked import _Fitted, _row_medians
from hybrid_scorer.llm.factory import make_client
from hybrid_scorer.marginal import average_over_one_hot
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import llm_columns


@pytest.mark.parametrize("role", ["content", "hybrid"])
def test_row_path_equals_batch_path_post_by_post(model_dir: Path, settings: Settings, role: str) -> None:
    model = HybridScorer.load(model_dir / role)
    csv = model_dir.parent / "posts.csv"
    posts, _ = prepare_posts(csv)
    raw = deduplicate(load_posts(csv))  # the fields as a caller sends them: raw body, "" for no flair
    client = make_client("mock", settings.model_copy(update={"cache_dir": model_dir.parent / "cache"}))
    enriched = llm_columns(posts, model.groups, client, progress=False).posts
    parity = check_parity(model, enriched, served_rows(raw, client, tuple(model.groups)))
    assert parity.posts == len(posts) > 100 and parity.features == model.manifest_.n_features
    assert parity.holds(1e-9), parity
    if role == "hybrid":  # the LLM columns are really there: a row without them would differ
        assert enriched.filter(like="llm_").notna().all().all()


@pytest.mark.parametrize("role", ["content", "hybrid"])
def test_the_steering_checks_variants_score_as_each_row_alone(model_dir: Path, settings: Settings, role: str) -> None:
    """score_variants (the blocks no variant changes built once, or read from the row's own booster row)
    equals `score` of each variant, known and unknown flair, with title and body variants carrying LLM
    outputs of their own (other posts', here): the steering check's shortcut changes no number."""
    from hybrid_scorer.sentences import parts
    from hybrid_scorer.steering import Reads, candidates, title_variants

    model = HybridScorer.load(model_dir / role)
    csv = model_dir.parent / "posts.csv"
    client = make_client("mock", settings.model_copy(update={"cache_dir": model_dir.parent / "cache"}))
    rows = served_rows(deduplicate(load_posts(csv)).head(40), client, tuple(model.groups))
    rows = [*rows, *(replace(r, title_clean=r.title_clean + " Does the moon matter?") for r in rows[:10])]
    checked, read = 0, 0
    for i, row in enumerate([*rows, *(replace(r, flair=None) for r in rows)]):
        titles = {title: rows[(i + 1) % len(rows)].llm for title in title_variants(row)}
        reads = Reads(titles, [rows[(i + 2) % len(rows)].llm for _ in parts(row.body)])
        variants = [without for _, _, without in candidates(row, reads, runs=False)]
        alone = [model.score(v, heads=False) for v in variants]
        base = model.score(row, heads=False).features
        for together in (model.score_variants(row, variants), model.score_variants(row, variants, base[0])):
            np.testing.assert_allclose(together.log, [a.log[0] for a in alone], rtol=0, atol=1e-12)
            assert together.features is not None and len(together.features) == len(alone)
            for built, each in zip(together.features, alone, strict=True):
                np.testing.assert_array_equal(built, each.features[0])
        checked, read = checked + len(variants), read + len(reads.titles) + len(reads.bodies)
    assert checked > 80 and read >= 40


def test_nearest_neighbours_match_a_full_float64_search_even_on_ties() -> None:
    """float32 candidates + float64 ranking give exactly the full float64 ranking (ties: lower index
    first), including when duplicates tie at the k-th place and the float32 guard must fall back."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 48))
    vectors[100:160] = vectors[7]  # 61 identical neighbours: more ties than float32 candidates (k + 16)
    fitted = _Fitted.fit(vectors, rng.normal(size=300), alphas=(1.0, 10.0))
    queries = np.vstack([vectors[7] + 1e-9, rng.normal(size=(20, 48))])
    units = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = units @ fitted.neighbours.astype(np.float64).T
    for k in (1, 10, 30):
        expected = np.array([np.lexsort((np.arange(300), -row))[:k] for row in exact])
        np.testing.assert_array_equal(fitted.nearest(units, k), expected)


def test_row_medians_are_numpys_medians() -> None:
    """The neighbours' median by one sort is np.median's number, to the bit, for odd and even k, repeated
    values and every scale."""
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 30, 31):
        for scale, decimals in ((1.0, 0), (1e-3, 6), (1e5, 2), (1.0, 12)):
            values = np.round(rng.normal(size=(7, n)) * scale, decimals)
            np.testing.assert_array_equal(_row_medians(values), np.median(values, axis=1))


def test_averaged_forest_of_no_group_is_the_model_itself(model_dir: Path) -> None:
    """average_over_one_hot rewrites only flair trees: with no one-hot group it writes the text it read."""
    text = (model_dir / "content" / "lightgbm.txt").read_text()
    assert average_over_one_hot(text, [], [], [1.0]) == text


def test_heads_train_save_load_and_match_post_by_post(posts: pd.DataFrame, csv_path: Path, tmp_path: Path) -> None:
    """Quantile heads and p_top: ordered quantiles, a probability, saved and loaded as LightGBM text, and
    the row path equal to the batch path, known and unknown flair."""
    model = HybridScorer(CONTENT_GROUPS, num_boost_round=60, heads=("q0.1", "q0.9", "p_top")).fit(posts)
    heads = model.score(posts).heads
    assert (heads["q0.1"] <= heads["q0.9"]).mean() > 0.9 and ((heads["p_top"] > 0) & (heads["p_top"] < 1)).all()
    loaded = HybridScorer.load(model.save(tmp_path / "m"))
    assert sorted(p.name for p in (tmp_path / "m").glob("lightgbm*.txt")) == [
        "lightgbm.txt",
        "lightgbm_p_top.txt",
        "lightgbm_q0.1.txt",
        "lightgbm_q0.9.txt",
    ]
    raw = deduplicate(load_posts(csv_path))
    parity = check_parity(loaded, posts, served_rows(raw, None, tuple(loaded.groups)))
    assert parity.holds(1e-9), parity
