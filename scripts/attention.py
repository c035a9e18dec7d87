"""Issue 33, candidate (b): a pooling of the title's per-token hidden states learned on the target.

The served embedding is the plain mean of the title's final hidden states. Here each title token gets a
weight softmax(h_t . q) and the post's vector is the weighted mean, read out by a linear map to log1p(score);
q and the readout are learned together on the training posts (squared loss, L2 on both, L-BFGS with the
exact gradient). With q = 0 it is the mean pooling with a ridge readout, where the fit starts, so what it
learns beyond that is the pooling. The token states are standardized and reduced by PCA to `dims`, fitted
on the training posts' tokens. Settings are fixed here, nothing is searched on the folds it is scored on.

`AttentionPoolingFeatures` is the experiment's feature group (one stacked column, out of fold for the
training rows as llm_stack is); `title_token_states` reads the states off the assessment pass of the
embedded LLM, up to the end of the title (causal attention: what follows cannot change them), kept per
post in `<cache_dir>/title_tokens.npz`. `scripts/llm_ab.py --experiment pooling` pairs it with the served
hybrid."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hybrid_scorer.llm.usage import LLMOutput
from scripts.oof_column import OutOfFoldColumn, ragged
from scripts.passes import kept_per_post

TOKENS_COLUMN = "title_token_states"


class AttentionPooling:
    """softmax(H q)-weighted mean of a post's token vectors H (after standardizing and PCA), then w . z + b."""

    def __init__(self, dims: int = 32, l2: float = 10.0, max_iter: int = 200, pca_sample: int = 20_000) -> None:
        self.dims, self.l2, self.max_iter, self.pca_sample = dims, l2, max_iter, pca_sample

    def _project(self, states: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(P, L, dims) padded token vectors and the (P, L) mask of real tokens."""
        longest = max(len(s) for s in states)
        padded = np.zeros((len(states), longest, self.dims))
        mask = np.zeros((len(states), longest), dtype=bool)
        for p, s in enumerate(states):
            padded[p, : len(s)] = ((np.asarray(s, dtype=np.float64) - self.mean_) / self.scale_) @ self.components_.T
            mask[p, : len(s)] = True
        return padded, mask

    @staticmethod
    def _forward(q: np.ndarray, tokens: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(attention weights (P, L), pooled vectors (P, dims))."""
        logits = np.where(mask, tokens @ q, -np.inf)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        return weights, np.einsum("pl,pld->pd", weights, tokens)

    def loss_and_gradient(
        self, params: np.ndarray, tokens: np.ndarray, mask: np.ndarray, target: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Mean squared error plus l2 (|q|^2 + |w|^2) / P, and its exact gradient in (q, w, b)."""
        d, n = self.dims, len(target)
        q, w, b = params[:d], params[d : 2 * d], params[2 * d]
        weights, pooled = self._forward(q, tokens, mask)
        residual = pooled @ w + b - target
        loss = float(residual @ residual / n + self.l2 * (q @ q + w @ w) / n)
        g = 2 * residual / n
        read = tokens @ w  # each token's readout (P, L)
        pull = g[:, None] * weights * (read - (pooled @ w)[:, None])  # d loss / d logits
        grad_q = np.einsum("pl,pld->d", np.where(mask, pull, 0.0), tokens) + 2 * self.l2 * q / n
        grad_w = pooled.T @ g + 2 * self.l2 * w / n
        return loss, np.concatenate([grad_q, grad_w, [g.sum()]])

    def fit(self, states: list[np.ndarray], y: np.ndarray, seed: int = 0) -> Self:
        all_tokens = np.concatenate(states).astype(np.float64)
        picked = np.random.default_rng(seed).permutation(len(all_tokens))[: self.pca_sample]
        self.mean_ = all_tokens.mean(axis=0)
        self.scale_ = all_tokens.std(axis=0) + 1e-6
        _, _, vt = np.linalg.svd((all_tokens[picked] - self.mean_) / self.scale_, full_matrices=False)
        self.components_ = vt[: self.dims]
        tokens, mask = self._project(states)
        self.target_mean_, self.target_scale_ = float(np.mean(y)), float(np.std(y)) + 1e-12
        target = (np.asarray(y, dtype=np.float64) - self.target_mean_) / self.target_scale_
        mean_pooled = np.einsum("pl,pld->pd", mask / mask.sum(axis=1, keepdims=True), tokens)
        ridge = mean_pooled.T @ mean_pooled + self.l2 * np.eye(self.dims)
        start = np.concatenate([np.zeros(self.dims), np.linalg.solve(ridge, mean_pooled.T @ target), [0.0]])
        found = minimize(
            self.loss_and_gradient,
            start,
            args=(tokens, mask, target),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter},
        )
        self.params_ = found.x
        return self

    def attention(self, states: list[np.ndarray]) -> list[np.ndarray]:
        """Each post's weights over its tokens (sums to 1)."""
        tokens, mask = self._project(states)
        weights, _ = self._forward(self.params_[: self.dims], tokens, mask)
        return [weights[p, : len(s)] for p, s in enumerate(states)]

    def predict(self, states: list[np.ndarray]) -> np.ndarray:
        tokens, mask = self._project(states)
        d = self.dims
        _, pooled = self._forward(self.params_[:d], tokens, mask)
        standard = pooled @ self.params_[d : 2 * d] + self.params_[2 * d]
        return np.asarray(standard * self.target_scale_ + self.target_mean_, dtype=np.float64)


class AttentionPoolingFeatures(OutOfFoldColumn):
    """The learned pooling's prediction as one stacked column (`llm_attention`, scripts/oof_column.py)."""

    name: ClassVar[str] = "llm_attention"
    needs: ClassVar[frozenset[LLMOutput]] = frozenset({LLMOutput.EMBEDDING})  # the same pass's hidden states

    def __init__(self, inner_folds: int = 5) -> None:
        self.inner_folds = inner_folds

    def inputs(self, posts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return ragged(list(posts[TOKENS_COLUMN])), np.ones(len(posts), dtype=bool)

    def learn(self, inputs: np.ndarray, target: np.ndarray) -> AttentionPooling:
        return AttentionPooling().fit(list(inputs), target)


def title_token_states(posts: pd.DataFrame, settings: Settings, prompt: str) -> list[np.ndarray]:
    """Each post's title tokens' final hidden states (float16, one row per token) from the assessment
    prompt's pass up to the title's end, kept in `<cache_dir>/title_tokens.npz`."""

    def read(backend: EmbeddedBackend, messages: list[dict[str, str]]) -> dict[str, np.ndarray]:
        _, states = backend.span_means(messages, lambda spans: [range(t, t + 1) for t in spans[0]])
        return {"states": np.stack(states).astype(np.float16)}

    kept = kept_per_post(posts, settings, prompt, EmbeddedOptions(), "title_tokens", read)
    return [k["states"] for k in kept]
