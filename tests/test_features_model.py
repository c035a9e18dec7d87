import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import bootstrap_intervals, cross_validate, regression_metrics
from hybrid_scorer.features import embedding as embedding_module
from hybrid_scorer.features.embedding import EmbeddingFeatures
from hybrid_scorer.features.llm import EMBEDDING_COLUMN
from hybrid_scorer.features.matrix import CONTENT_GROUPS, FeatureMatrix, make_group
from hybrid_scorer.features.meta import MetaFeatures, TimeTrendFeatures, normalize_flair
from hybrid_scorer.features.text import TextStatsFeatures
from hybrid_scorer.model import HybridScorer


def test_text_stats_count_structure(posts: pd.DataFrame) -> None:
    row = posts[posts["body"].str.contains("EDIT")].head(1)
    stats = dict(zip(TextStatsFeatures.columns, TextStatsFeatures().transform(row)[0], strict=True))
    assert stats["body_links"] == 1 and stats["body_edits"] == 1
    assert stats["title_ends_with_question_mark"] == 1 and stats["title_starts_with_question_word"] == 1
    assert stats["has_body"] == 1


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("  Linguistics", "linguistics"),
        ("META", "meta"),
        ("Meta", "meta"),
        ("", "none"),
        (None, "none"),
        ("Human  Body", "human body"),
    ],
)
def test_flair_normalization(raw: str | None, norm: str) -> None:
    assert normalize_flair(raw) == norm


def test_rare_flairs_become_other(posts: pd.DataFrame) -> None:
    meta = MetaFeatures(min_count=1000).fit(posts)
    assert meta.flairs == ["other"]
    onehot = meta.transform(posts)[:, 0]
    assert (onehot == 1).all()


def test_time_trend_is_decimal_year(posts: pd.DataFrame) -> None:
    years = TimeTrendFeatures().transform(posts)[:, 0]
    assert np.all((years >= 2012) & (years < 2023))


def test_unknown_group_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown feature group 'colour'"):
        make_group("colour")


def test_feature_matrix_json_round_trip(posts: pd.DataFrame) -> None:
    matrix = FeatureMatrix([*CONTENT_GROUPS, "time_trend"]).fit(posts)
    restored = FeatureMatrix.from_dict(json.loads(json.dumps(matrix.to_dict())))
    assert restored.feature_names == matrix.feature_names
    assert (restored.transform(posts) != matrix.transform(posts)).nnz == 0


def _with_embeddings(posts: pd.DataFrame, dim: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = posts.copy()
    out[EMBEDDING_COLUMN] = [rng.normal(size=dim) for _ in range(len(out))]
    out.loc[out.index[:3], EMBEDDING_COLUMN] = None  # failed extractions
    return out


def test_embedding_pca_shapes_missing_rows_and_round_trip(posts: pd.DataFrame) -> None:
    frame = _with_embeddings(posts)
    group = EmbeddingFeatures(n_components=4).fit(frame)
    out = group.transform(frame)
    assert out.shape == (len(frame), 4)
    assert np.isnan(out[:3]).all() and np.isfinite(out[3:]).all()
    restored = EmbeddingFeatures.from_dict(json.loads(json.dumps(group.to_dict())))
    np.testing.assert_allclose(restored.transform(frame), out)


def test_embedding_reducer_never_sees_test_rows(posts: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """Property: in CV, every PCA fit sees exactly its fold's training rows."""
    frame = _with_embeddings(posts)
    frame[EMBEDDING_COLUMN] = [None if v is None else np.append(v, i) for i, v in enumerate(frame[EMBEDDING_COLUMN])]
    folds = grouped_folds(frame, 3, seed=0)
    fits: list[set[int]] = []

    real_fit = embedding_module.PCA.fit

    def recording_fit(self, matrix, *args, **kwargs):
        fits.append({int(v) for v in matrix[:, -1]})
        return real_fit(self, matrix, *args, **kwargs)

    monkeypatch.setattr(embedding_module.PCA, "fit", recording_fit)
    cross_validate("emb", lambda: HybridScorer(["llm_embedding"], num_boost_round=5), frame, folds, progress=False)
    assert len(fits) == 3
    for (train, test), fitted_rows in zip(folds, fits, strict=True):
        assert fitted_rows.isdisjoint(set(test.tolist()))
        assert fitted_rows <= set(train.tolist())


def test_scorer_predicts_on_score_scale(posts: pd.DataFrame) -> None:
    model = HybridScorer(num_boost_round=50).fit(posts)
    predictions = model.predict(posts)
    assert predictions.shape == (len(posts),) and (predictions >= 0).all()
    np.testing.assert_allclose(predictions, np.clip(np.expm1(model.predict_log(posts)), 0, None))
    # it learnt the planted signal: posts with popular words rank higher
    assert regression_metrics(np.log1p(posts["score"].to_numpy(float)), model.predict_log(posts))["spearman"] > 0.5


def test_save_load_round_trip_is_identical_and_pickle_free(posts: pd.DataFrame, tmp_path: Path) -> None:
    model = HybridScorer([*CONTENT_GROUPS, "time_trend"], num_boost_round=50).fit(posts)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["features.json", "lightgbm.txt", "manifest.json"]
    for path in (tmp_path / "m").iterdir():
        path.read_text()  # all plain text: nothing to unpickle
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["feature_groups"] == [*CONTENT_GROUPS, "time_trend"] and len(manifest["training_data_hash"]) == 64
    loaded = HybridScorer.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(posts), model.predict(posts))


def test_unfitted_and_missing_artifacts_are_clear_errors(tmp_path: Path, posts: pd.DataFrame) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        HybridScorer().predict(posts)
    with pytest.raises(FileNotFoundError, match=r"lightgbm\.txt is missing"):
        HybridScorer.load(tmp_path)


def test_metrics_and_bootstrap() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(5, 2, 300)
    perfect = regression_metrics(y, y)
    assert perfect["spearman"] == pytest.approx(1) and perfect["rmse"] == 0 and perfect["r2"] == 1
    noisy = y + rng.normal(0, 1, 300)
    intervals, delta = bootstrap_intervals(y, noisy, baseline_log=noisy, n_boot=200)
    point, low, high = intervals["spearman"]
    assert low <= point <= high < 1
    assert delta["spearman"] == (0.0, 0.0, 0.0)  # identical predictions: zero paired difference
    _, better = bootstrap_intervals(y, y + rng.normal(0, 0.3, 300), baseline_log=noisy, n_boot=200)
    assert better["spearman"][1] > 0 and better["rmse"][2] < 0
