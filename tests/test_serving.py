import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from hybrid_scorer.cli import main
from hybrid_scorer.config import DEFAULT_PROMPT, MonitorThresholds, Settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.llm.backends.mock import MockBackend
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import load_prompt
from hybrid_scorer.llm.protocol import RawReply
from hybrid_scorer.llm.usage import LLMFailure
from hybrid_scorer.monitoring import build_reference, category_drift, psi, summarize
from hybrid_scorer.serving import Prediction, PredictionInputError, Predictor

POST = {"title": "Why is the black hole gravity so strong?", "body": "Asking for a friend."}


@pytest.fixture
def predictor(model_dir: Path, settings: Settings, tmp_path: Path) -> Predictor:
    return Predictor(model_dir=model_dir, settings=settings, log_path=tmp_path / "logs" / "p.jsonl")


class FailingBackend(MockBackend):
    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        raise ValueError("model crashed")


class SlowBackend(MockBackend):
    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        time.sleep(0.5)
        return super().complete(messages, response_model)


def test_predict_returns_score_with_mlops_fields(predictor: Predictor) -> None:
    prediction = predictor.predict(POST)
    assert isinstance(prediction, Prediction) and prediction.score >= 0 and not prediction.fallback
    assert prediction.score == pytest.approx(max(np.expm1(prediction.log_score), 0))
    assert prediction.model_version.startswith("text_stats+tfidf+meta+llm_ratings+llm_embedding+llm_stack@")
    assert prediction.llm_tokens > 0 and not prediction.cache_hit and prediction.latency_ms > 0
    again = predictor.predict(POST)
    assert again.cache_hit and again.llm_tokens == 0 and again.score == prediction.score


def test_predictions_carry_p_top_from_the_models_classifier(predictor: Predictor, model_dir: Path) -> None:
    """p_top is the served model's own estimate of P(score >= 1,000) (its `p_top` head, equal on the row
    path and the batch path: tests/test_row_path.py): a probability, and it reaches the log."""
    from hybrid_scorer.model import HybridScorer

    prediction = predictor.predict({**POST, "flair": "Physics"})
    assert prediction.p_top is not None and 0 < prediction.p_top < 1
    assert "p_top" in HybridScorer.load(model_dir / "hybrid").manifest_.heads  # type: ignore[union-attr]
    predictor.log.flush()
    assert json.loads(predictor.log.path.read_text().splitlines()[-1])["p_top"] == prediction.p_top


@pytest.mark.parametrize(
    ("post", "field", "hint"),
    [
        ({"body": "no title"}, "'title'", "Field required"),
        ({"title": "   "}, "'title'", "at least 1 character"),
        ({"title": 42}, "'title'", "valid string"),
        ({"title": "ok", "body": ["a"]}, "'body'", "valid string"),
        ({"title": "x" * 301}, "'title'", "at most 300"),
        ({"title": "ok", "titel": "typo"}, "'titel'", "Extra inputs"),
        ({"title": "ok", "created_utc": "last week"}, "'created_utc'", "date-time"),
        ({"title": "ok", "created_utc": "0"}, "'created_utc'", "date-time"),  # not Unix seconds
        ({"title": "ok", "created_utc": 1700000000}, "'created_utc'", "date-time"),
        ({"title": "ok", "created_utc": "2026-12-01"}, "'created_utc'", "date-time"),  # a date without a time
    ],
)
def test_invalid_input_names_the_field(predictor: Predictor, post: dict, field: str, hint: str) -> None:
    with pytest.raises(PredictionInputError) as info:
        predictor.predict(post)
    assert field in str(info.value) and hint in str(info.value)


def test_non_dict_input_is_rejected(predictor: Predictor) -> None:
    with pytest.raises(PredictionInputError, match="must be a dict"):
        predictor.predict("Why is the sky blue?")  # type: ignore[arg-type]


def test_batch_returns_errors_in_place(predictor: Predictor) -> None:
    out = predictor.predict_batch([POST, {"body": "x"}, POST])
    assert (
        isinstance(out[0], Prediction) and isinstance(out[1], PredictionInputError) and isinstance(out[2], Prediction)
    )


def predictor_with(backend: MockBackend, model_dir: Path, settings: Settings, tmp_path: Path, **kw: Any) -> Predictor:
    """A predictor whose LLM client is injected (the manifest check still applies: same spec and prompt)."""
    client = LLMClient(backend, load_prompt(), max_retries=0)
    return Predictor(model_dir, settings, client=client, log_path=tmp_path / "logs" / "p.jsonl", **kw)


@pytest.mark.parametrize(("backend", "kind"), [(FailingBackend(), "error"), (SlowBackend(), "timeout")])
def test_fallback_to_content_model(
    backend: MockBackend, kind: str, model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    predictor = predictor_with(backend, model_dir, settings, tmp_path, llm_budget_ms=100)
    prediction = predictor.predict(POST)
    assert prediction.fallback and (prediction.fallback_reason or "").startswith(kind)
    assert prediction.model_version.startswith("text_stats+tfidf+meta@")


def test_a_bug_is_an_error_not_a_silent_fallback(
    model_dir: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = predictor_with(MockBackend(), model_dir, settings, tmp_path).load()
    assert predictor.models.hybrid is not None
    monkeypatch.setattr(predictor.models.hybrid, "score", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        predictor.predict(POST)


def test_serving_refuses_an_llm_the_model_was_not_trained_with(
    model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    from hybrid_scorer.errors import ModelMismatchError
    from hybrid_scorer.llm.prompts import PromptTemplate

    class OtherModel(MockBackend):
        model = "mock-v2"

    with pytest.raises(ModelMismatchError, match=r"trained with LLM 'mock:mock-v1'.*'mock:mock-v2'"):
        predictor_with(OtherModel(), model_dir, settings, tmp_path).load()
    prompt = load_prompt()
    edited = LLMClient(MockBackend(), PromptTemplate(prompt.version, prompt.system + " Be terse.", prompt.user))
    with pytest.raises(ModelMismatchError, match=f"prompt {DEFAULT_PROMPT}@"):
        Predictor(model_dir, settings, client=edited, log_path=tmp_path / "p.jsonl").load()


class OtherEmbedder(MockBackend):
    embedding_model = "other-embed-v1"  # type: ignore[assignment]


def test_a_model_trained_without_an_embedder_is_refused_with_one_and_the_message_is_whole(
    model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """The message names what the model was trained on, what serving would use and the fix, in
    balanced parentheses (it used to lose its first half to an operator-precedence slip)."""
    from hybrid_scorer.errors import ModelMismatchError

    client = LLMClient(MockBackend(), load_prompt(), embedder=OtherEmbedder())
    with pytest.raises(ModelMismatchError) as refused:
        Predictor(model_dir, settings, client=client, log_path=tmp_path / "p.jsonl").load()
    message = str(refused.value)
    assert (
        "the model was trained on embeddings of 'mock:mock-v1', serving would embed with 'mock:other-embed-v1'"
        in message
    )
    assert "(serve without --embedder: the chat LLM embedded)" in message
    assert message.count("(") == message.count(")")


class InvalidReplyBackend(MockBackend):
    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        return RawReply(
            text='{"topic": "physics", "question_clarity": 1000000000000000, "novelty": 1, "predicted_interest": 1}'
        )


def test_out_of_range_llm_output_falls_back_and_is_logged(model_dir: Path, settings: Settings, tmp_path: Path) -> None:
    predictor = predictor_with(InvalidReplyBackend(), model_dir, settings, tmp_path)
    prediction = predictor.predict(POST)
    assert prediction.fallback and prediction.model_version.startswith("text_stats+tfidf+meta@")
    predictor.log.flush()  # the log is written off the request path
    record = json.loads((tmp_path / "logs" / "p.jsonl").read_text().splitlines()[-1])
    assert record["llm_failure"] == "validation" and record["features"]["llm_out_of_range"] is True


def test_log_is_written_and_monitor_parses_it(
    predictor: Predictor, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(5):
        predictor.predict({**POST, "title": f"{POST['title']} {i}"})
    predictor.log.flush()
    lines = (tmp_path / "logs" / "p.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert len(lines) == 5 and {"timestamp", "model_version", "latency_ms", "llm_tokens", "fallback"} <= set(record)
    assert record["features"]["title_chars"] > 0
    monitor = ["monitor", "--log", str(tmp_path / "logs" / "p.jsonl"), "--model-dir", str(model_dir)]
    assert main([*monitor, "--fail-on-alert", "--threshold", "p99_latency_ms=1e-6"]) == 1
    out = capsys.readouterr().out
    assert "psi.title_chars" in out and "js.flair" in out and "! p99_latency_ms" in out
    assert main([*monitor, "--threshold", "p99_latency_ms=1e-6"]) == 0  # alerts are printed, not fatal
    assert "! p99_latency_ms" in capsys.readouterr().out


def test_a_predictor_opens_its_log_and_starts_its_writer_at_its_first_prediction(
    model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """Making a Predictor (to read its models, to check a release) writes no file and starts no thread;
    the first prediction does both, and closing writes its line."""
    path = tmp_path / "logs" / "p.jsonl"

    def writers() -> int:
        return sum(t.name == "prediction-log" for t in threading.enumerate())

    before = writers()
    predictor = Predictor(model_dir=model_dir, settings=settings, log_path=path)
    predictor.load()
    assert not path.exists() and writers() == before
    predictor.predict(POST)
    assert path.exists() and writers() == before + 1
    predictor.close()
    assert len(path.read_text().splitlines()) == 1 and writers() == before


def test_log_rotates_at_its_size_bound(model_dir: Path, settings: Settings, tmp_path: Path) -> None:
    small = settings.model_copy(update={"prediction_log_max_bytes": 2000})
    predictor = Predictor(model_dir=model_dir, settings=small, log_path=tmp_path / "r" / "p.jsonl")
    for i in range(20):
        predictor.predict({"title": f"question number {i}?"})
    predictor.close()  # everything written, rotated at the bound
    files = list((tmp_path / "r").glob("p.jsonl*"))
    assert len(files) > 1 and all(f.stat().st_size <= 2000 for f in files)


def test_drift_detector_fires_on_shift_and_stays_quiet_on_resample() -> None:
    rng = np.random.default_rng(0)
    reference_values = rng.lognormal(4, 1, 5000)
    flairs = pd.Series(rng.choice(["physics", "biology", "medicine"], 5000, p=[0.5, 0.3, 0.2]))
    reference = build_reference(pd.DataFrame({"title_chars": reference_values, "flair": flairs}))
    resample = rng.choice(reference_values, 500)
    shifted = reference_values[:500] * 3
    assert psi(reference["numeric"]["title_chars"], resample) < 0.1
    assert psi(reference["numeric"]["title_chars"], shifted) > 0.5
    same = category_drift(reference["categorical"]["flair"], flairs.sample(500, random_state=1))
    moved = category_drift(reference["categorical"]["flair"], pd.Series(["medicine"] * 400 + ["physics"] * 100))
    assert same[0] < 0.1 and same[1] > 0.01
    assert moved[0] > 0.3 and moved[1] < 1e-6


def test_summarize_flags_thresholds() -> None:
    log = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=4, freq="s").astype(str),
            "latency_ms": [1, 2, 3, 400],
            "llm_called": True,
            "cache_hit": [True, False, True, True],
            "llm_failure": [None, "timeout", None, None],
            "fallback": [False, True, False, False],
            "llm_tokens": [0, 10, 0, 0],
        }
    )
    metrics, alerts = summarize(log, None, MonitorThresholds())
    assert metrics["fallback_rate"] == 0.25 and metrics["cache_hit_rate"] == 0.75
    assert any(a.startswith("p99_latency_ms") for a in alerts) and any(a.startswith("fallback_rate") for a in alerts)


# --- concurrency and the bounded LLM queue ---------------------------------------------------------


def test_concurrent_predicts_equal_sequential_ones(model_dir: Path, settings: Settings, tmp_path: Path) -> None:
    """Many threads hitting a fresh predictor at once (first requests included: nothing is built lazily)."""
    from concurrent.futures import ThreadPoolExecutor

    posts = [{"title": f"Why do {w} stars shine?", "body": w * 3} for w in ("red", "blue", "old", "young")] * 6
    concurrent = predictor_with(MockBackend(), model_dir, settings, tmp_path)
    with ThreadPoolExecutor(12) as pool:
        scores = list(pool.map(lambda p: concurrent.predict(p).log_score, posts))
    sequential = predictor_with(MockBackend(), model_dir, settings, tmp_path / "seq")
    assert scores == [sequential.predict(p).log_score for p in posts]
    assert len((tmp_path / "logs" / "p.jsonl").read_text().splitlines()) == len(posts)


def test_a_busy_llm_falls_back_at_once_instead_of_queueing_past_the_budget(
    model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """One slow local LLM (0.5 s per call), a 1.2 s budget, 12 new posts at once: the queue admits what
    it can answer in time; the rest is scored by the content model, flagged busy or timeout."""
    from concurrent.futures import ThreadPoolExecutor

    predictor = predictor_with(SlowBackend(), model_dir, settings, tmp_path, llm_budget_ms=1200).warm()
    assert predictor.models.llm_features is not None and predictor.models.llm_features.queue.call_ms >= 500
    posts = [{"title": f"Brand new question {i} about planets?"} for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        predictions = list(pool.map(predictor.predict, posts))
    reasons = [p.llm_failure for p in predictions]
    assert all(p.score >= 0 for p in predictions)
    assert reasons.count("busy") >= 6 and reasons.count(None) >= 1  # some served live, most refused at once
    assert all(p.fallback == (p.llm_failure is not None) for p in predictions)
    deadline = time.monotonic() + 5
    while predictor.models.llm_features.queue.pending and time.monotonic() < deadline:  # work already started drains
        time.sleep(0.05)
    assert predictor.models.llm_features.queue.pending == 0


def test_on_the_event_loop_a_live_llm_call_holds_no_thread_and_the_budget_bounds_the_wait(
    model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """The service's path (predict_async): every worker thread of the loop is taken (the service has a
    few, here one, held by other work), and 8 new posts arrive at once with a slow LLM (0.5 s per call)
    and a 1.2 s budget. Each is answered without a worker thread (a request that needed one would wait for
    the held thread, past its budget, and here forever): the queue admits what it can answer in time, the
    rest falls back at once (busy) or when the budget runs out."""
    import asyncio
    import threading

    import anyio

    predictor = predictor_with(SlowBackend(), model_dir, settings, tmp_path, llm_budget_ms=1200).warm()
    posts = [{"title": f"Another brand new question {i} about moons?"} for i in range(8)]
    release = threading.Event()

    async def scenario() -> list[Prediction]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        held = asyncio.ensure_future(anyio.to_thread.run_sync(release.wait))  # the only worker thread, taken
        await asyncio.sleep(0.05)
        try:
            return await asyncio.wait_for(asyncio.gather(*(predictor.predict_async(p) for p in posts)), 20)
        finally:
            release.set()
            await held

    try:
        predictions = asyncio.run(scenario())
    finally:
        predictor.close()
    reasons = [p.llm_failure for p in predictions]
    assert reasons.count(None) >= 1 and reasons.count("busy") >= 3, reasons  # some live, most refused at once
    assert all(p.fallback == (p.llm_failure is not None) for p in predictions)


def test_train_serve_parity(model_dir: Path, settings: Settings, tmp_path: Path) -> None:
    """A training post scores the same through predict() as through the batch path training uses."""
    from hybrid_scorer.llm.factory import make_client
    from hybrid_scorer.model import HybridScorer
    from hybrid_scorer.pipeline import llm_columns
    from hybrid_scorer.roles import Role
    from hybrid_scorer.specs import SERVED

    posts, _ = prepare_posts(model_dir.parent / "posts.csv")
    sample = posts.sample(8, random_state=1)
    trained = settings.model_copy(update={"cache_dir": model_dir.parent / "cache"})
    batch = llm_columns(sample, SERVED[Role.HYBRID].groups, make_client("mock", trained), progress=False).posts
    expected = HybridScorer.load(model_dir / "hybrid").predict_log(batch)
    predictor = Predictor(model_dir, trained, log_path=tmp_path / "p.jsonl")
    served = [
        predictor.predict(
            {"title": r.title, "body": r.body, "flair": r.flair, "created_utc": r.created_utc.isoformat()}
        )
        for r in sample.itertuples()
    ]
    assert [p.fallback for p in served] == [False] * 8 and all(p.cache_hit for p in served)
    np.testing.assert_allclose([p.log_score for p in served], expected, rtol=0, atol=1e-12)


def test_predictions_carry_the_trained_conformal_intervals(predictor: Predictor, model_dir: Path) -> None:
    """`train` calibrates conformalized quantile intervals out of fold; predict() returns them in score
    units around the prediction, the 80% inside the 90%, and their width depends on the post."""
    manifest = json.loads((model_dir / "hybrid" / "manifest.json").read_text())
    assert manifest["intervals"]["kind"] == "cqr" and {"q0.05", "q0.95"} <= set(manifest["heads"])
    posts = [POST, {"title": "Is it true that we only use ten percent of our brains?", "body": ""}]
    widths = []
    for post in posts:
        prediction = predictor.predict(post)
        assert prediction.interval_80 is not None and prediction.interval_90 is not None
        (low80, high80), (low90, high90) = prediction.interval_80, prediction.interval_90
        assert low90 <= low80 <= prediction.score <= high80 <= high90
        widths.append(np.log1p(high90) - np.log1p(low90))
    assert widths[0] != pytest.approx(widths[1], abs=1e-3)  # adaptive: not one width for every post


def test_past_the_spend_limit_new_posts_fall_back_flagged_budget(
    model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """A priced LLM and a tiny hourly limit: the first new post is scored live (and costs), the next new
    one falls back flagged `budget` without calling the LLM, and a cached post still gets the hybrid."""
    from hybrid_scorer.llm.cache import LLMCache
    from hybrid_scorer.llm.usage import UsageLedger
    from hybrid_scorer.serving.metrics import ServiceMetrics

    calls: list[int] = []

    class CountingBackend(MockBackend):
        def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
            calls.append(1)
            return super().complete(messages, response_model)

    priced = UsageLedger("mock:mock-v1", {"assess": (1000.0, 1000.0)})  # $1,000 per 1M tokens
    client = LLMClient(CountingBackend(), load_prompt(), cache=LLMCache(tmp_path / "cache"), ledger=priced)
    limited = settings.model_copy(update={"llm_max_usd_per_hour": 0.01})
    predictor = Predictor(model_dir, limited, client=client, log_path=tmp_path / "p.jsonl")
    first = predictor.predict({"title": "A first costly question about stars?"})
    assert not first.fallback and first.llm_cost_usd > 0.01 and len(calls) == 1
    second = predictor.predict({"title": "A second new question about planets?"})
    assert second.fallback and (second.fallback_reason or "").startswith("budget: $") and len(calls) == 1
    again = predictor.predict({"title": "A first costly question about stars?"})
    assert not again.fallback and again.cache_hit
    metrics = ServiceMetrics()
    metrics.observe_prediction(second, "content")
    assert metrics.fallbacks.labels("budget")._value.get() == 1 and not metrics.llm_failures._metrics


def test_a_probability_is_never_shown_as_certain() -> None:
    from hybrid_scorer.serving.schemas import as_percent

    assert [as_percent(p) for p in (0.0, 0.004, 0.5, 0.996, 1.0)] == ["0%", "under 1%", "50%", "over 99%", "100%"]


def test_the_explanation_says_in_words_what_moved_the_prediction(predictor: Predictor) -> None:
    """explain adds drivers: every group but the bias, largest share first, each in a poster's words, with
    the contribution the model gave it; the CLI's summary says the largest three the same way."""
    from hybrid_scorer.features.matrix import group_class
    from hybrid_scorer.serving.summary import describe

    p = predictor.predict({"title": "Why do cats purr when they are hurt?", "body": "Is it pain relief?"}, True)
    assert p.contributions is not None and p.drivers is not None
    assert [d.group for d in p.drivers] == sorted(
        (g for g in p.contributions if g != "bias"), key=lambda g: -abs(p.contributions[g])
    )
    for d in p.drivers:
        assert d.reads_as == group_class(d.group).reads_as and d.reads_as and d.group not in d.reads_as
        assert d.effect_log == p.contributions[d.group]
    said = describe(p)
    assert f"{p.drivers[0].reads_as} ({p.drivers[0].factor})" in said
    assert all(d["factor"] == d_.factor for d, d_ in zip(p.model_dump(mode="json")["drivers"], p.drivers, strict=True))
    assert not any(d.group in said for d in p.drivers)
    assert predictor.predict({"title": "Why do cats purr when they are hurt?"}).drivers is None


def test_a_share_is_said_as_a_factor_on_the_score_never_as_a_rounded_nothing() -> None:
    from hybrid_scorer.serving.schemas import as_factor

    assert [as_factor(x) for x in (0.0, 0.004, -0.004, 0.3, -0.3)] == ["barely", "barely", "barely", "×1.35", "÷1.35"]
    assert as_factor(0.006) == "×1.01" and as_factor(-0.006) == "÷1.01"


def test_a_fallback_is_said_in_words_for_every_failure_kind(
    model_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    from hybrid_scorer.serving.schemas import FAILURE_WORDS
    from hybrid_scorer.serving.summary import describe

    assert set(FAILURE_WORDS) == set(LLMFailure)
    predictor = predictor_with(FailingBackend(), model_dir, settings, tmp_path)
    p = predictor.predict({"title": "A question the LLM will not answer?"})
    assert p.fallback and p.llm_failure is not None
    assert f"({FAILURE_WORDS[p.llm_failure]})" in describe(p) and str(p.llm_failure) not in describe(p)
    assert p.model_dump(mode="json")["llm_failure_words"] == FAILURE_WORDS[p.llm_failure]  # what the page shows


def test_a_title_the_published_schema_accepts_is_a_title_the_service_accepts() -> None:
    """Every one-character title (the Basic Multilingual Plane): the schema's pattern, read with
    ECMAScript's \\s as JSON Schema validators and schemathesis read it, accepts exactly the titles that
    pydantic's strip-then-validate accepts (schemathesis found "\\x85": valid by the schema, stripped to
    nothing by Python)."""
    from pydantic import ValidationError

    from hybrid_scorer.serving.schemas import PostInput

    ecma_space = set("\t\n\v\f\r \xa0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {
        chr(c) for c in range(0x2000, 0x200B)
    }
    excluded = ecma_space | {chr(c) for c in range(0x1C, 0x20)} | {"\x85", "\ufeff"}
    assert PostInput.model_json_schema()["properties"]["title"]["pattern"] == r"[^\s\x1c-\x1f\x85\ufeff]"
    disagree = []
    for code in (c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF):
        title = chr(code)
        try:
            PostInput(title=title)
            served = True
        except ValidationError:
            served = False
        if served != (title not in excluded):
            disagree.append(hex(code))
    assert not disagree, disagree


def test_a_prediction_says_what_the_model_made_of_its_flair(predictor: Predictor) -> None:
    """A flair the model learned is read as itself, a misspelled one as 'other' (and said so in words), an
    empty one (or "None") as posted without one, and none sent as not known; the flairs a caller can name
    hold neither 'other' nor the no-flair level, which the page offers on its own."""
    from hybrid_scorer.serving.summary import describe

    named = predictor.models.content.flairs()
    assert named and "none" not in named and "other" not in named
    assert predictor.predict({**POST, "flair": f"  {named[0].upper()} "}).flair_read_as == named[0]
    misspelled = predictor.predict({**POST, "flair": "Phyiscs"})
    assert misspelled.flair_read_as == "other" and "not one the model learned" in describe(misspelled)
    assert predictor.predict({**POST, "flair": ""}).flair_read_as == ""
    assert predictor.predict({**POST, "flair": "None"}).flair_read_as == ""
    assert predictor.predict(POST).flair_read_as is None
