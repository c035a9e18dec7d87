"""Issue 33's learned pooling (scripts/attention.py): its gradient is the loss's, it finds a signal one
token carries that the mean dilutes, and its cache of ragged arrays round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import check_grad
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold

from hybrid_scorer.data import fold_groups
from scripts.attention import TOKENS_COLUMN, AttentionPooling, AttentionPoolingFeatures
from scripts.passes import load_ragged, save_ragged


def planted(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Posts of 4-12 tokens in 6 dims; one token per post is marked (dim 0 = 3) and the target is its dim 1."""
    states, target = [], np.zeros(n)
    for p in range(n):
        tokens = rng.normal(size=(rng.integers(4, 13), 6))
        tokens[:, 0] = rng.normal(scale=0.3, size=len(tokens))
        marked = rng.integers(len(tokens))
        tokens[marked, 0] = 3.0
        states.append(tokens)
        target[p] = tokens[marked, 1]
    return states, target


def test_the_gradient_is_the_loss_gradient() -> None:
    rng = np.random.default_rng(0)
    states, target = planted(40, rng)
    model = AttentionPooling(dims=6, l2=0.5)
    model.fit(states, target)  # sets the projection
    tokens, mask = model._project(states)
    standard = (target - target.mean()) / target.std()
    for _ in range(3):
        params = rng.normal(size=2 * 6 + 1)
        error = check_grad(
            lambda x: model.loss_and_gradient(x, tokens, mask, standard)[0],
            lambda x: model.loss_and_gradient(x, tokens, mask, standard)[1],
            params,
        )
        size = float(np.linalg.norm(model.loss_and_gradient(params, tokens, mask, standard)[1]))
        assert error < 1e-5 * max(1.0, size)


def test_it_finds_the_token_the_mean_dilutes() -> None:
    rng = np.random.default_rng(1)
    train, y_train = planted(600, rng)
    test, y_test = planted(300, rng)
    model = AttentionPooling(dims=6, l2=1.0).fit(train, y_train)
    learned = spearmanr(model.predict(test), y_test).statistic
    mean = Ridge(alpha=1.0).fit([s.mean(axis=0) for s in train], y_train)
    pooled = spearmanr(mean.predict([s.mean(axis=0) for s in test]), y_test).statistic
    assert learned > 0.8 and learned > pooled + 0.3, (learned, pooled)
    weights = model.attention(test[:50])
    on_marked = [w[int(np.argmax(s[:, 0]))] for w, s in zip(weights, test[:50], strict=True)]
    assert np.median(on_marked) > 0.5 and all(abs(w.sum() - 1) < 1e-9 for w in weights)


def test_ragged_arrays_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "kept.npz"
    kept = {"a": {"states": np.ones((3, 4), np.float16)}, "b": {"states": np.zeros((1, 4), np.float16)}}
    save_ragged(path, kept)
    found = load_ragged(path)
    assert list(found) == ["a", "b"] and found["a"]["states"].shape == (3, 4) and found["b"]["states"].sum() == 0
    assert load_ragged(tmp_path / "absent.npz") == {}


def test_the_stacked_column_is_out_of_fold_for_training_posts_and_learned_on_all_for_new_ones() -> None:
    """scripts/oof_column.py, the loop the experiments' stacked columns share: a training post's value comes
    from a model that did not see its group (reposts of one title share their value's model), and new
    posts get the model fitted on every training post."""
    rng = np.random.default_rng(3)
    states, target = planted(120, rng)
    states = [np.hstack([s, rng.normal(size=(len(s), 34))]) for s in states]  # the pooling's 32 dims need more
    titles = [f"question {p // 2}" for p in range(120)]  # pairs of reposts: one group each
    posts = pd.DataFrame({"title": titles, TOKENS_COLUMN: states})
    group = AttentionPoolingFeatures(inner_folds=4)
    column = group.fit_transform(posts, target)
    assert column.shape == (120, 1) and not np.isnan(column).any()
    full = AttentionPooling().fit(states, target)
    assert not np.allclose(column[:, 0], full.predict(states))  # not the in-sample fit
    held = GroupKFold(n_splits=4).split(posts, groups=fold_groups(posts))
    train, test = next(iter(held))
    alone = AttentionPooling().fit([states[i] for i in train], target[train])
    np.testing.assert_allclose(column[test, 0], alone.predict([states[i] for i in test]))
    np.testing.assert_allclose(group.transform(posts)[:, 0], full.predict(states))
    assert spearmanr(column[:, 0], target).statistic > 0.5  # out of fold, the planted signal is still found
