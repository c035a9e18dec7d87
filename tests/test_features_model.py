import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import cross_validate
from hybrid_scorer.features import embedding as embedding_module
from hybrid_scorer.features.embedding import EmbeddingFeatures
from hybrid_scorer.features.llm import EMBEDDING_COLUMN, LLMQuestionFeatures
from hybrid_scorer.features.matrix import CONTENT_GROUPS, FeatureMatrix, make_group
from hybrid_scorer.features.meta import MetaFeatures, TimeTrendFeatures, normalize_flair
from hybrid_scorer.features.stacked import EmbeddingStackFeatures
from hybrid_scorer.features.text import TextStatsFeatures
from hybrid_scorer.features.tfidf import TfidfFeatures
from hybrid_scorer.intervals import SCHEMES, SymmetricIntervals, interval_score
from hybrid_scorer.llm.backends.mock import MockBackend
from hybrid_scorer.llm.cache import LLMCache
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import load_prompt
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import llm_columns
from hybrid_scorer.quality import bootstrap_intervals, regression_metrics
from hybrid_scorer.target import log_target


def test_text_stats_count_structure(posts: pd.DataFrame) -> None:
    row = posts[posts["body"].str.contains("sources")].head(1)
    stats = dict(zip(TextStatsFeatures.columns, TextStatsFeatures().transform(row)[0], strict=True))
    assert stats["body_links"] == 1 and stats["body_paragraphs"] == 1  # the "EDIT: typo" paragraph is cut
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
    assert meta.flairs_ == ["other"]
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


@pytest.mark.parametrize(
    "unfitted",
    [
        HybridScorer(),
        MetaFeatures(),
        TfidfFeatures(),
        EmbeddingFeatures(),
        LLMQuestionFeatures(),
        FeatureMatrix(CONTENT_GROUPS),
    ],
    ids=lambda u: type(u).__name__,
)
def test_unfitted_estimators_raise_instead_of_returning_empty_columns(unfitted: object, posts: pd.DataFrame) -> None:
    method = getattr(unfitted, "predict", None) or unfitted.transform  # type: ignore[attr-defined]
    with pytest.raises(NotFittedError, match="not fitted"):
        method(_with_embeddings(posts))


def test_constructors_store_parameters_verbatim() -> None:
    options = {"llm_embedding": {"n_components": 4}}
    scorer = HybridScorer(("text_stats",), params={"num_leaves": 3}, feature_options=options, seed=7)
    assert scorer.groups == ("text_stats",) and scorer.params == {"num_leaves": 3}
    assert scorer.feature_options is options and not hasattr(scorer, "booster_")
    assert scorer.lightgbm_params()["num_leaves"] == 3 and scorer.lightgbm_params()["seed"] == 7


def test_a_scorer_clones_as_a_scikit_learn_estimator(posts: pd.DataFrame) -> None:
    """`clone` gives an unfitted twin with every parameter (heads included); fitted, it predicts the same."""
    from sklearn.base import clone

    scorer = HybridScorer(("text_stats", "meta"), num_boost_round=30, heads=("q0.1", "p_top"), seed=3).fit(posts)
    twin = clone(scorer)
    assert not hasattr(twin, "booster_") and not hasattr(twin, "heads_")
    assert twin.get_params() == {**scorer.get_params(), "heads": ("q0.1", "p_top")}
    twin.fit(posts)
    np.testing.assert_array_equal(twin.predict_log(posts), scorer.predict_log(posts))
    assert set(twin.score(posts).heads) == {"q0.1", "p_top"}


def test_the_calibrated_scorer_cross_fits_its_intervals_and_saves_them(posts: pd.DataFrame, tmp_path: Path) -> None:
    """`fit` is the whole calibration: the out-of-fold predictions are those of clones fitted per grouped
    fold (the base estimator stays unfitted), the intervals calibrated on them cover the training posts'
    out-of-fold targets at their levels, and the saved model carries intervals, CV metrics and provenance."""
    from sklearn.base import clone

    from hybrid_scorer.calibrated import CalibratedScorer
    from hybrid_scorer.intervals import LEVELS, heads_for

    base = HybridScorer(("text_stats", "meta"), num_boost_round=30, heads=heads_for("cqr"), seed=3)
    calibrated = CalibratedScorer(base, "cqr", n_folds=3, seed=5, provenance={"release": "r1"}, n_boot=50)
    calibrated.fit(posts)
    assert not hasattr(base, "booster_")
    by_hand = cross_validate("x", lambda: clone(base), posts, grouped_folds(posts, 3, 5), progress=False)
    np.testing.assert_array_equal(calibrated.cv_.oof_log, by_hand.oof_log)
    manifest = HybridScorer.load(calibrated.save(tmp_path / "m")).manifest_
    assert manifest is not None and manifest.intervals is not None and manifest.extra == {"release": "r1"}
    assert manifest.metrics["cv_spearman"] == pytest.approx(by_hand.mean("spearman"))
    assert manifest.metrics["expected_spearman"] == manifest.metrics["cv_spearman_oof"]  # no nested estimate given
    y = log_target(posts)
    for level in LEVELS:
        low, high = manifest.intervals.log_bounds(by_hand.oof_log, by_hand.oof_heads, level)
        assert np.mean((low <= y) & (y <= high)) >= level  # split conformal on its own calibration posts
    assert not hasattr(clone(calibrated), "scorer_") and clone(calibrated).get_params()["n_folds"] == 3


def test_missing_artifacts_are_a_clear_error(tmp_path: Path) -> None:
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


def _recording(monkeypatch: pytest.MonkeyPatch, cls: type, seen: list[set[str]]) -> None:
    """Record the post ids every fit of `cls` sees."""
    real_fit = cls.fit

    def fit(self, posts, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(set(posts["post_id"]))
        return real_fit(self, posts, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", fit)


@pytest.mark.parametrize("group", [TfidfFeatures, MetaFeatures])
def test_vocabulary_and_flair_levels_are_fitted_on_training_folds_only(
    group: type, posts: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Property, as for the PCA: TF-IDF's vocabulary/idf and the kept flair levels come from the fold's
    training rows; a term or flair only the test fold has never becomes a column."""
    frame = posts.copy()
    folds = grouped_folds(frame, 3, seed=0)
    marker = frame["post_id"].iloc[folds[0][1]]  # test rows of fold 0 get a word and a flair of their own
    frame.loc[frame["post_id"].isin(marker), "title_clean"] += " zyxwordonlyintest zyxwordonlyintest"
    frame.loc[frame["post_id"].isin(marker), "flair"] = "Test-only flair"
    seen: list[set[str]] = []
    _recording(monkeypatch, group, seen)
    fitted: list[HybridScorer] = []

    def make() -> HybridScorer:
        fitted.append(HybridScorer(CONTENT_GROUPS, num_boost_round=5, feature_options={"meta": {"min_count": 1}}))
        return fitted[-1]

    cross_validate("local", make, frame, folds, progress=False)
    ids = frame["post_id"].to_numpy()
    for (train, test), fit_ids in zip(folds, seen, strict=True):
        assert fit_ids == set(ids[train]) and fit_ids.isdisjoint(ids[test])
    names = fitted[0].features_.feature_names
    assert not any("zyxwordonlyintest" in n or "test_only" in n for n in names)
    assert any("test_only_flair" in n for n in fitted[1].features_.feature_names)  # seen when in training


def test_unknown_flair_is_the_average_over_trained_flairs_not_no_flair(posts: pd.DataFrame) -> None:
    model = HybridScorer(num_boost_round=50).fit(posts)
    meta = model.features_.group("meta")
    post = posts.head(1)
    unknown = float(model.predict_log(post.assign(flair=None))[0])
    weights = meta.unknown_flair_weights()
    assert "none" not in weights and sum(weights.values()) == pytest.approx(1)
    each = {f: float(model.predict_log(post.assign(flair=f))[0]) for f in weights}
    assert unknown == pytest.approx(sum(w * each[f] for f, w in weights.items()))
    mixed = pd.concat([post.assign(flair=None), posts.iloc[1:4]], ignore_index=True)
    np.testing.assert_allclose(model.predict_log(mixed)[1:], model.predict_log(posts.iloc[1:4]))


def test_contributions_by_group_sum_to_the_prediction(posts: pd.DataFrame) -> None:
    model = HybridScorer(num_boost_round=50).fit(posts)
    sample = pd.concat([posts.head(3), posts.head(1).assign(flair=None)], ignore_index=True)
    contributions = model.score(sample, contributions=True).contributions
    assert contributions is not None
    assert list(contributions.columns) == [*CONTENT_GROUPS, "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.predict_log(sample), rtol=1e-6)


def _labelled_embeddings(posts: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Embeddings whose first dimension carries the log score, so the stacked features have something
    to find; the rest is noise."""
    rng = np.random.default_rng(seed)
    out = _with_embeddings(posts, dim=6, seed=seed)
    y = np.log1p(out["score"].to_numpy(float))
    out[EMBEDDING_COLUMN] = [
        None if v is None else np.append(y[i] + rng.normal(scale=0.3), v) for i, v in enumerate(out[EMBEDDING_COLUMN])
    ]
    return out


def test_stacked_features_of_a_training_row_never_see_its_own_label(posts: pd.DataFrame) -> None:
    """TargetEncoder's contract: fit_transform gives each training row values from inner folds that
    exclude it, so changing its label changes nothing in its own row; transform uses every row."""
    frame = _labelled_embeddings(posts)
    group = EmbeddingStackFeatures(ks=(3, 5), inner_folds=3)
    stacked = group.fit_transform(frame, log_target(frame))
    assert stacked.shape == (len(frame), 5) and np.isnan(stacked[:3]).all() and np.isfinite(stacked[3:]).all()
    row = 10
    relabelled = frame.copy()
    relabelled.loc[relabelled.index[row], "score"] = 10**6
    again = EmbeddingStackFeatures(ks=(3, 5), inner_folds=3).fit_transform(relabelled, log_target(relabelled))
    np.testing.assert_array_equal(again[row], stacked[row])
    assert not np.allclose(again, stacked, equal_nan=True)  # other rows' features did use that label
    full = group.transform(frame)
    assert not np.allclose(full[3:], stacked[3:])  # in-sample values differ from out-of-fold ones
    y = np.log1p(frame["score"].to_numpy(float))[3:]
    assert np.corrcoef(stacked[3:, 0], y)[0, 1] > 0.5  # the ridge column found the score direction


def test_stacked_features_round_trip_and_train_through_the_matrix(posts: pd.DataFrame) -> None:
    frame = _labelled_embeddings(posts)
    group = EmbeddingStackFeatures(ks=(3,), inner_folds=3).fit(frame, log_target(frame))
    restored = EmbeddingStackFeatures.from_dict(json.loads(json.dumps(group.to_dict())))
    np.testing.assert_array_equal(restored.transform(frame), group.transform(frame))
    matrix = FeatureMatrix(["text_stats", "llm_stack"], {"llm_stack": {"ks": (3,), "inner_folds": 3}})
    training = matrix.fit_transform(frame, log_target(frame)).toarray()
    ridge = matrix.column_offset("llm_stack")
    fitted = matrix.group("llm_stack")
    assert fitted is not None
    np.testing.assert_array_equal(training[:, ridge], fitted.fit_transform(frame, log_target(frame))[:, 0])
    with pytest.raises(ValueError, match="learns from the labels"):
        EmbeddingStackFeatures().fit(frame)


def test_question_features_read_p_yes_fall_back_to_the_answer_and_round_trip(posts: pd.DataFrame) -> None:
    frame = posts.head(4).assign(
        llm_q_why=[1.0, 0.0, 1.0, np.nan],
        llm_q_why_expected=[0.8, 0.1, np.nan, np.nan],  # a backend without logprobs for row 2; a failure in row 3
        llm_q_space=[0.0, 0.0, 0.0, 0.0],
        llm_q_space_expected=[0.2, 0.3, 0.4, 0.5],
    )
    group = LLMQuestionFeatures().fit(frame)
    assert group.feature_names == ["llm_q_why", "llm_q_space"]
    np.testing.assert_array_equal(group.transform(frame), [[0.8, 0.2], [0.1, 0.3], [1.0, 0.4], [np.nan, 0.5]])
    restored = LLMQuestionFeatures.from_dict(json.loads(json.dumps(group.to_dict())))
    np.testing.assert_array_equal(restored.transform(frame), group.transform(frame))
    with pytest.raises(ValueError, match="--prompt assessment_v3"):
        LLMQuestionFeatures().fit(posts)


def test_a_model_on_question_features_trains_saves_and_loads(posts: pd.DataFrame, tmp_path: Path) -> None:
    """From the questions prompt through the mock backend to a saved model and back, with no pickle."""
    client = LLMClient(MockBackend(), load_prompt("assessment_v3"), cache=LLMCache(tmp_path / "cache"))
    enriched = llm_columns(posts, ("text_stats", "llm_questions"), client, progress=False).posts
    model = HybridScorer(["text_stats", "llm_questions"], num_boost_round=30).fit(enriched)
    model.save(tmp_path / "m")
    loaded = HybridScorer.load(tmp_path / "m")
    questions = loaded.features_.group("llm_questions")
    assert questions is not None and len(questions.feature_names) == 12
    np.testing.assert_array_equal(loaded.predict(enriched), model.predict(enriched))


def test_conformal_half_width_is_the_finite_sample_quantile() -> None:
    residuals = np.arange(1, 20, dtype=float)  # 19 residuals: the 90% rank is ceil(20 * 0.9) = 18
    intervals = SymmetricIntervals.calibrate(np.zeros(19), residuals, {}, levels=(0.8, 0.9, 0.99))
    assert intervals.half_widths == {"0.8": 16.0, "0.9": 18.0, "0.99": float("inf")}
    low, high = intervals.log_bounds(np.array([1.0, 30.0]), {}, 0.8)
    np.testing.assert_array_equal(low, [0.0, 14.0])  # never below log1p(0)
    np.testing.assert_array_equal(high, [17.0, 46.0])
    with pytest.raises(ValueError, match="no 95% interval"):
        intervals.log_bounds(np.zeros(1), {}, 0.95)
    old = SymmetricIntervals.model_validate({"half_widths": {"0.9": 1.0}, "n_residuals": 19})  # a 2025 manifest
    assert old.kind == "symmetric" and old.n_calibration == 19


def _heteroscedastic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Targets whose noise grows with x, a point prediction and quantile heads that know it (roughly)."""
    x = rng.uniform(0, 4, n)
    y = 5.0 + x + rng.normal(scale=0.2 + x, size=n)
    heads = {f"q{q:g}": 5.0 + x + (0.2 + x) * z for q, z in ((0.05, -1.5), (0.1, -1.2), (0.9, 1.2), (0.95, 1.5))}
    return y, 5.0 + x, heads


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_interval_scheme_covers_new_exchangeable_posts(scheme: str) -> None:
    """Calibrated on one sample, each scheme covers ~90% of a new sample from the same distribution; the
    adaptive ones are narrower where the noise is small (an interval that says something about the post)."""
    rng = np.random.default_rng(0)
    calibrated = SCHEMES[scheme].calibrate(*_heteroscedastic(3000, rng))
    y, point, heads = _heteroscedastic(20000, rng)
    low, high = calibrated.log_bounds(point, heads, 0.9)
    assert 0.88 <= float(np.mean((y >= low) & (y <= high))) <= 0.92
    quiet, noisy = point < 5.8, point > 8.2
    widths = high - low
    if scheme == "symmetric":
        assert np.allclose(widths[quiet & (low > 0)], widths[quiet & (low > 0)][0])
    else:
        assert np.median(widths[quiet]) < 0.5 * np.median(widths[noisy])
    score = interval_score(y, low, high, 0.9).mean()
    assert np.isfinite(score) and score > np.mean(widths) - 1e-9  # width plus the penalty for misses


def test_stacked_models_give_each_models_raw_score_in_one_call() -> None:
    """forests.stack_models: a regression, a quantile and a binary model of different lengths, stacked,
    give exactly each model's raw score (the shorter ones padded with one-leaf trees of value 0)."""
    import lightgbm as lgb

    from hybrid_scorer.forests import stack_models

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = x[:, 0] + rng.normal(size=400)
    data = lgb.Dataset(x, y, free_raw_data=False)
    params = {"verbose": -1, "num_leaves": 7, "seed": 1}
    models = [
        lgb.train({**params, "objective": "regression"}, data, 40),
        lgb.train({**params, "objective": "quantile", "alpha": 0.9}, lgb.Dataset(x, y, reference=data), 15),
        lgb.train({**params, "objective": "binary"}, lgb.Dataset(x, (y > 1).astype(float), reference=data), 25),
    ]
    stacked = lgb.Booster(model_str=stack_models([m.model_to_string() for m in models]))
    separately = np.column_stack([m.predict(x, raw_score=True) for m in models])
    assert stacked.num_trees() == 3 * 40
    np.testing.assert_array_equal(stacked.predict(x, raw_score=True), separately)


def test_a_model_in_chunks_stacked_beside_shorter_ones_adds_up_to_itself() -> None:
    """forests.in_chunks: a 40-round model cut into chunks of 15 rounds (15, 15, 10), stacked beside a
    15-round head, gives the model's raw score as the chunks' sum (to the last bits) and the head's
    exactly, in 45 trees rather than the 80 that padding the head to 40 rounds would walk."""
    import lightgbm as lgb

    from hybrid_scorer.forests import in_chunks, stack_models

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    y = x[:, 0] - x[:, 1] + rng.normal(size=300)
    data = lgb.Dataset(x, y, free_raw_data=False)
    params = {"verbose": -1, "num_leaves": 7, "seed": 1}
    point = lgb.train({**params, "objective": "regression"}, data, 40)
    head = lgb.train({**params, "objective": "quantile", "alpha": 0.1}, lgb.Dataset(x, y, reference=data), 15)
    chunks = in_chunks(point.model_to_string(), 15)
    assert [lgb.Booster(model_str=c).num_trees() for c in chunks] == [15, 15, 10]
    stacked = lgb.Booster(model_str=stack_models([*chunks, head.model_to_string()]))
    raw = stacked.predict(x, raw_score=True)
    assert stacked.num_trees() == 3 * 15 + 15 and raw.shape == (300, 4)
    np.testing.assert_allclose(raw[:, :3].sum(axis=1), point.predict(x, raw_score=True), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(raw[:, 3], head.predict(x, raw_score=True))


def test_the_fast_single_row_call_gives_lightgbms_own_answer() -> None:
    """rowforest.RowForest, LightGBM's C API single-row call, against Booster.predict on the same rows:
    one output and several, NaN read as missing, a row of the wrong width refused, and a pickled forest
    that sets its predictor up again."""
    import pickle

    import lightgbm as lgb

    from hybrid_scorer.forests import stack_models
    from hybrid_scorer.rowforest import RowForest

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = np.nan_to_num(x[:, 0]) + rng.normal(size=300)
    data = lgb.Dataset(x, y, free_raw_data=False)
    params = {"verbose": -1, "num_leaves": 7, "seed": 1}
    point = lgb.train({**params, "objective": "regression"}, data, 30)
    top = lgb.train({**params, "objective": "binary"}, lgb.Dataset(x, (y > 1).astype(float), reference=data), 30)
    both = lgb.Booster(model_str=stack_models([point.model_to_string(), top.model_to_string()]))
    for booster in (point, both):
        forest = RowForest(booster)
        expected = booster.predict(x, raw_score=True).reshape(len(x), -1)
        np.testing.assert_array_equal(np.array([forest(row) for row in x]), expected)
        np.testing.assert_array_equal(forest.rows(x[:7]), expected[:7])
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(forest))(x[3]), expected[3])
    with pytest.raises(ValueError, match="a row of 8 features expected"):
        RowForest(point)(x[0, :5])


def test_the_row_path_reads_a_text_as_the_vectorizer_does() -> None:
    """FieldTfidf.transform_text, which makes its 1-2 grams itself, equals the vectorizer's batch
    transform on texts that test the token pattern: unicode, digits, apostrophes, one-letter words,
    repeats, nothing at all."""
    from hybrid_scorer.features.tfidf import FieldTfidf

    words = "why is the sky blue at night don't can't it's naïve café straße l'eau 3.14 e=mc2 漢字 a I x"
    rng = np.random.default_rng(3)
    corpus = pd.Series([" ".join(rng.choice(words.split(), 12)) for _ in range(200)])
    field = FieldTfidf(300).fit(corpus)
    texts = [
        "Why is the SKY blue? The sky, the sky!",
        "Ünïcode Straße naïve café 3.14 e=mc2 a I x",
        "don't can't it's l'eau O'Neill",
        "",
        "   ",
        "tab\tnew\nline\u00a0nbsp 漢字 かな the the the sky sky",
        *corpus[:20],
    ]
    batch = field.transform(pd.Series(texts)).toarray()
    rows = np.array([field.transform_text(text) for text in texts])
    assert np.count_nonzero(rows) > 100
    np.testing.assert_allclose(rows, batch, rtol=0, atol=1e-12)


def test_text_stats_count_links_and_digits_as_the_patterns_do() -> None:
    """text._links and text._digits, which skip the pattern's scan where a substring search or the ten
    ASCII digits answer, count what the pattern and str.isdigit count, on ASCII and non-ASCII texts."""
    from hybrid_scorer.features.text import _LINK, _digits, _links

    texts = [
        "",
        "no link here 123",
        "see [this](https://x.org) and http://y.com, www.z.net and (http://a.b)",
        "https://www.example.com/path?q=1 twice",
        "Ünïcode ²³ ٣ 42 and https://ü.de",
        "plain words, 1.5 and 3/4",
        "HTTP://UPPER.CASE is not a link to the pattern",
    ]
    for text in texts:
        assert _links(text) == len(_LINK.findall(text)), text
        assert _digits(text) == sum(map(str.isdigit, text)), text
