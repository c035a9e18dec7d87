"""Prompt injection: the defence (llm/sanitize.py) on every attempt of the suite, in unit tests and with
the real embedded model; the suite's own arithmetic (hybrid_scorer/injection.py) on a served model.
bench/injection.py runs the full suite (30 real posts, the served hybrid) and writes the table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_scorer.config import Settings
from hybrid_scorer.injection import ATTEMPTS, measure, neutral_of_length, summarize, with_text
from hybrid_scorer.llm import prompts
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import PostText, load_prompt
from hybrid_scorer.llm.sanitize import strip_instructions
from hybrid_scorer.serving.predictor import Predictor

POST = {"title": "Why does ice float on water?", "body": "I read that hydrogen bonds matter. How exactly?"}
PADDING_ATTEMPT = ATTEMPTS[-1]


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.name for a in ATTEMPTS])
def test_every_attempt_is_taken_out_of_what_the_llm_reads(attempt: object) -> None:
    attacked = with_text(POST, attempt.place, attempt.text)  # type: ignore[attr-defined]
    seen = strip_instructions(attacked[attempt.place])  # type: ignore[attr-defined]
    if attempt is PADDING_ATTEMPT:  # the padding is ordinary text and stays; the instruction after it goes
        assert "ignore" not in seen.lower() and seen.startswith(POST["body"])
    else:
        assert seen == POST[attempt.place]  # type: ignore[attr-defined]


def test_ordinary_posts_reach_the_llm_unchanged(posts: pd.DataFrame) -> None:
    """The test fixture's posts (and, checked once by hand: all 3,707 real ones) pass unchanged, so
    their cache keys do not move."""
    for text in [*posts["title_clean"], *posts["body_clean"], neutral_of_length(300)]:
        assert strip_instructions(text) == text
    about_ai = "Why do AI models hallucinate? Can a language model rate its own answers? (5 on the scale?)"
    assert strip_instructions(about_ai) == about_ai


def test_the_suite_measures_attempt_minus_control(model_dir: Path, settings: Settings, tmp_path: Path) -> None:
    predictor = Predictor(model_dir=model_dir, settings=settings, log_path=tmp_path / "p.jsonl")
    attempts = ATTEMPTS[:2]
    moves = measure(predictor, [POST], attempts)
    assert [m.attempt for m in moves] == [a.name for a in attempts] and not any(m.fallback for m in moves)
    for move, attempt in zip(moves, attempts, strict=True):
        hit = predictor.predict(with_text(POST, attempt.place, attempt.text)).log_score
        control = predictor.predict(with_text(POST, attempt.place, neutral_of_length(len(attempt.text)))).log_score
        assert move.hybrid == pytest.approx(hit - control, abs=1e-12)
        assert sum(move.by_group.values()) == pytest.approx(move.hybrid, abs=1e-9)  # contributions add up
    summary = summarize(moves)
    assert [s.posts for s in summary] == [1, 1] and summary[0].share_over_2x == float(moves[0].hybrid > math.log(2))


@pytest.mark.integration
def test_the_embedded_model_reads_the_post_not_the_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the real model: an attacked post gives the same assessment and embedding as the post itself;
    without the defence the attempt reaches the model (its answers change)."""
    from hybrid_scorer.llm.backends.embedded import EmbeddedBackend, EmbeddedOptions
    from tests.test_integration import _gguf

    client = LLMClient(EmbeddedBackend(EmbeddedOptions(model_path=_gguf())), load_prompt())
    clean = PostText("p", POST["title"], POST["body"])
    base = client.assess(clean), client.embed(clean)
    attempts = [a for a in ATTEMPTS if a is not PADDING_ATTEMPT]
    for attempt in attempts:
        attacked = with_text(POST, attempt.place, attempt.text)
        text = PostText("p", attacked["title"], attacked["body"])
        assert client.assess(text).expected == base[0].expected
        np.testing.assert_array_equal(client.embed(text).vector, base[1].vector)
    monkeypatch.setattr(prompts, "strip_instructions", lambda text: text)
    attacked = with_text(POST, "body", attempts[3].text)  # closing the <post> block
    undefended = client.assess(PostText("p", attacked["title"], attacked["body"]))
    assert undefended.expected != base[0].expected
