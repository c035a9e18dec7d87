"""The OpenAI and Ollama backends over real HTTP, against local stand-ins that validate like the real
services (tests/standins.py): strict schemas, error bodies, logprobs, retries, loud failures, reruns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_scorer.cli import main
from hybrid_scorer.llm.schema import PostAssessment
from tests.standins import (
    OllamaStandIn,
    OpenAIStandIn,
    SchemaRejected,
    check_strict,
    fault_plan,
    running,
)

RATINGS = ["question_clarity", "novelty", "predicted_interest"]


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("HYBRID_SCORER_EMBEDDING_MODEL", "text-embedding-3-small")
    monkeypatch.setenv("HYBRID_SCORER_LLM_TIMEOUT_S", "0.5")


def _extract(csv: Path, spec: str, limit: int, tmp_path: Path, *extra: str) -> int:
    args = ["extract", "--data", str(csv), "--llm", spec, "--limit", str(limit), "-q"]
    return main([*args, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "ex"), *extra])


def _table(tmp_path: Path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "ex" / "assessments.csv")


# --- the strict-mode rules themselves -------------------------------------------------------------


def test_strict_rules_reject_what_openai_rejects() -> None:
    plain = PostAssessment.model_json_schema()  # pydantic's own: a description beside topic's $ref
    with pytest.raises(SchemaRejected, match=r"context=\(properties.topic\), \$ref cannot have keywords"):
        check_strict(plain)
    loose = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    with pytest.raises(SchemaRejected, match="additionalProperties"):
        check_strict(loose)
    with pytest.raises(SchemaRejected, match="Missing 'a'"):
        check_strict({**loose, "additionalProperties": False, "required": []})
    with pytest.raises(SchemaRejected, match="'allOf' is not permitted"):
        check_strict({**loose, "additionalProperties": False, "allOf": [{}]})
    check_strict({**loose, "additionalProperties": False})  # a valid one passes


def test_openai_standin_answers_a_strict_violation_with_openais_400(openai_env: None) -> None:
    import openai

    with running(OpenAIStandIn(None, 1.0, 0)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
        plain = {"name": "PostAssessment", "schema": PostAssessment.model_json_schema(), "strict": True}
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}],
                response_format={"type": "json_schema", "json_schema": plain},
            )
    assert info.value.status_code == 400
    assert "Invalid schema for response_format 'PostAssessment'" in info.value.message
    assert info.value.body["type"] == "invalid_request_error"  # type: ignore[index]


# --- the project's backends end to end ------------------------------------------------------------


def test_extract_through_strict_openai_standin(
    csv_path: Path, tmp_path: Path, openai_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running(OpenAIStandIn(None, 1.0, 0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        assert _extract(csv_path, "openai:gpt-4o-mini", 20, tmp_path) == 0
    table = _table(tmp_path)
    assert len(table) == 20 and table["failure"].isna().all()
    assert table[RATINGS].isin(range(1, 6)).all().all()
    expected = table[[f"{r}_expected" for r in RATINGS]].to_numpy()
    assert np.isfinite(expected).all() and ((expected >= 1) & (expected <= 5)).all()  # from logprobs
    assert server.traffic.paths["/v1/chat/completions"] == 20 and server.traffic.paths["/v1/embeddings"] == 20
    ledger = json.loads((tmp_path / "ex" / "ledger.json").read_text())["total"]
    cost = ledger["produced_cost_by_kind_usd"]
    assert cost["assess"] > 0 and cost["embed"] > 0  # gpt-4o-mini and text-embedding-3-small, priced apart


def test_yes_no_questions_through_strict_openai_standin(
    csv_path: Path, tmp_path: Path, openai_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The questioned schema passes strict mode, and P(yes) is read from the answer token's logprobs."""
    with running(OpenAIStandIn(None, 1.0, 0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        assert _extract(csv_path, "openai:gpt-4o-mini", 10, tmp_path, "--prompt", "assessment_v3") == 0
    table = _table(tmp_path)
    assert len(table) == 10 and table["failure"].isna().all() and (table["prompt_version"] == "assessment_v3").all()
    answers = table[[c for c in table.columns if c.startswith("q_") and not c.endswith("_expected")]]
    assert answers.shape[1] == 12
    p_yes = table[[f"{c}_expected" for c in answers.columns]].to_numpy()
    assert np.isfinite(p_yes).all() and ((p_yes > 0) & (p_yes < 1)).all()
    assert ((p_yes > 0.5) == (answers.to_numpy() == 1)).all()  # the answer is the more likely word


def test_extract_through_ollama_standin(csv_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_SCORER_EMBEDDING_MODEL", "nomic-embed-text")
    with running(OllamaStandIn(None, 1.0, 0)) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        assert _extract(csv_path, "ollama:qwen2.5:7b", 20, tmp_path) == 0
    table = _table(tmp_path)
    assert len(table) == 20 and table["failure"].isna().all() and table[RATINGS].isin(range(1, 6)).all().all()
    assert np.isfinite(table[[f"{r}_expected" for r in RATINGS]].to_numpy()).all()
    assert server.traffic.paths["/api/chat"] == 20 and server.traffic.paths["/api/embed"] == 20


def test_ollama_standin_refuses_formats_ollama_refuses() -> None:
    """Raw HTTP (the ollama client itself refuses a bad format before sending it)."""
    import httpx
    import ollama

    chat = {"model": "qwen2.5:7b", "messages": [{"role": "user", "content": "x"}], "stream": False}
    with running(OllamaStandIn(None, 1.0, 0)) as server:
        bad = httpx.post(server.url + "/api/chat", json={**chat, "format": "yaml"})
        assert bad.status_code == 400 and 'expected "json" or a valid JSON Schema object' in bad.json()["error"]
        dangling = {"type": "object", "properties": {"t": {"$ref": "#/$defs/Missing"}}}
        assert httpx.post(server.url + "/api/chat", json={**chat, "format": dangling}).status_code == 400
        with pytest.raises(ollama.ResponseError, match="not found") as info:
            ollama.Client(host=server.url).chat(model="llama9", messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 404


# --- faults over HTTP -----------------------------------------------------------------------------


def test_faults_are_retried_reasked_or_counted_and_a_rerun_resends_only_failures(
    csv_path: Path,
    tmp_path: Path,
    openai_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """30% of posts get a fault on their first request (500, 503, 429 + retry-after, a stall past the
    timeout, truncated JSON, an out-of-range rating); one post fails on every request. The first run's
    summary says what the rerun then sends: that one post, and after it nothing."""
    posts = pd.read_csv(csv_path).drop_duplicates("url").head(40)
    doomed = str(posts["title"].iloc[7])
    plan = fault_plan(0.3, persistent={doomed})
    with running(OpenAIStandIn(plan, stall_s=1.0, retry_after_s=0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        assert _extract(csv_path, "openai:gpt-4o-mini", 40, tmp_path) == 0  # 1 failure in 40 is within 5%
        assert "a rerun sends 1 post(s) again" in capsys.readouterr().out
        faults = dict(server.traffic.faults)
        table = _table(tmp_path)
        server.plan = None  # the endpoint recovers; the same endpoint, so the same cache keys
        sent = server.traffic.paths["/v1/chat/completions"]
        assert _extract(csv_path, "openai:gpt-4o-mini", 40, tmp_path) == 0
        resent = server.traffic.paths["/v1/chat/completions"] - sent
        assert "a rerun sends 0 post(s) again: nothing" in capsys.readouterr().out
    assessed = table["failure"].isna()
    assert assessed.sum() >= 38 and set(faults) >= {"500", "429", "stall", "truncated", "out_of_range"}
    assert table.loc[assessed, RATINGS].isin(range(1, 6)).all().all()  # nothing out of range was kept
    assert table.loc[~assessed, RATINGS].isna().all().all()  # a failure is NaN, never a made-up value
    assert table.loc[~assessed, "failure"].tolist() == ["transient"]
    assert resent == 1  # only the post that failed is sent again
    assert _table(tmp_path)["failure"].isna().all()


def test_a_failing_run_exits_non_zero_and_train_refuses_the_group(
    csv_path: Path,
    tmp_path: Path,
    openai_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The bug this issue was filed for: pydantic's plain schema sent in strict mode is refused by OpenAI
    for every post. The run must say so and exit 1, and `train` must refuse to fit on the gap."""
    import hybrid_scorer.llm.backends.openai as openai_backend

    def plain(model: type) -> dict:
        return {
            "type": "json_schema",
            "json_schema": {"name": "PostAssessment", "schema": model.model_json_schema(), "strict": True},
        }

    monkeypatch.setattr(openai_backend, "strict_response_format", plain)
    with running(OpenAIStandIn(None, 1.0, 0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        assert _extract(csv_path, "openai:gpt-4o-mini", 20, tmp_path) == 1
        err = capsys.readouterr().err
        assert "20/20 assessments failed (error: 20)" in err and "$ref cannot have keywords" in err
        assert "fix: the endpoint rejected the request" in err
        args = [
            "train",
            "--data",
            str(csv_path),
            "--llm",
            "openai:gpt-4o-mini",
            "-q",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
        assert main([*args, "--out", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err
    assert "feature group 'llm_ratings'" in err and "(error: " in err
    assert not (tmp_path / "models" / "hybrid").exists()


def test_any_chat_llm_with_any_embedder_through_train_and_serving(
    csv_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--embedder ollama:nomic-embed-text` with the mock chat backend: the embeddings come over HTTP from
    the Ollama stand-in, the assessments from the chat backend; the model remembers its embedder, serving
    uses it by default and refuses another one."""
    from hybrid_scorer.config import get_settings
    from hybrid_scorer.errors import ModelMismatchError
    from hybrid_scorer.serving.predictor import Predictor

    with running(OllamaStandIn(None, 1.0, 0)) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        common = ["--data", str(csv_path), "--llm", "mock", "--embedder", "ollama:nomic-embed-text", "-q"]
        common += ["--cache-dir", str(tmp_path / "cache")]
        assert main(["extract", *common, "--out", str(tmp_path / "ex")]) == 0
        embedded = server.traffic.paths["/api/embed"]
        assert embedded > 30 and server.traffic.paths.get("/api/chat", 0) == 0
        assert main(["train", *common, "--out", str(tmp_path / "models"), "--no-register"]) == 0
        assert server.traffic.paths["/api/embed"] == embedded  # training read the cache
        manifest = json.loads((tmp_path / "models" / "hybrid" / "manifest.json").read_text())
        assert manifest["embedder_spec"] == "ollama:nomic-embed-text"
        assert manifest["embedding_model"] == "ollama:nomic-embed-text" and manifest["llm_model"] == "mock:mock-v1"
        settings = get_settings(cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs")
        predictor = Predictor(tmp_path / "models", settings).warm()
        prediction = predictor.predict({"title": "Do whales ever sleep with one eye open?"})
        assert not prediction.fallback and server.traffic.paths["/api/embed"] > embedded
        other = get_settings(cache_dir=tmp_path / "cache", embedder="mock")
        with pytest.raises(ModelMismatchError, match="trained on embeddings of 'ollama:nomic-embed-text'"):
            Predictor(tmp_path / "models", other).load()


def test_extract_stops_before_its_cost_cap_and_a_rerun_resumes(
    csv_path: Path,
    tmp_path: Path,
    openai_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Against the OpenAI stand-in at gpt-4o-mini's prices: a cap below the run's cost sends only what fits,
    exits 1 naming the posts left, and the rerun with room sends exactly those."""
    with running(OpenAIStandIn(None, stall_s=0, retry_after_s=0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        assert _extract(csv_path, "openai:gpt-4o-mini", 40, tmp_path, "--max-cost-usd", "0.0005") == 1
        err = capsys.readouterr().err
        left = int(re.search(r"cost cap of \$0\.0005: (\d+) post\(s\) left", err).group(1))  # type: ignore[union-attr]
        first = server.traffic.paths["/v1/chat/completions"]
        ledger = json.loads((tmp_path / "ex" / "ledger.json").read_text())["total"]
        assert 0 < first == 40 - left and ledger["estimated_cost_usd"] <= 0.0005
        assert _extract(csv_path, "openai:gpt-4o-mini", 40, tmp_path, "--max-cost-usd", "1") == 0
        assert server.traffic.paths["/v1/chat/completions"] - first == left
        assert "a rerun sends 0 post(s) again: nothing" in capsys.readouterr().out
