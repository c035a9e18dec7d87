"""A user's mistakes are answered with what is wrong and how to fix it (exit 2, one line), never a
traceback, and never silently: settings from the environment, the LLM setup a model is served with,
registry references, database URLs, feedback files, cut-short logs and too little data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hybrid_scorer.cli import main
from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.data import DataValidationError, grouped_folds
from hybrid_scorer.errors import ConfigurationError, MissingArtifactError
from hybrid_scorer.llm.identity import LLMIdentity
from tests.conftest import synthetic_frame


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("HYBRID_SCORER_SEED", "abc", "HYBRID_SCORER_SEED='abc': Input should be a valid integer"),
        ("HYBRID_SCORER_LLM_POOLING", "words", "HYBRID_SCORER_LLM_POOLING='words': Input should be 'title'"),
        ("HYBRID_SCORER_SERVE_MAX_IN_FLIGHT", "0", "HYBRID_SCORER_SERVE_MAX_IN_FLIGHT='0': Input should be greater"),
        ("HYBRID_SCORER_STEERING_LIMIT_LOG", "-1", "HYBRID_SCORER_STEERING_LIMIT_LOG='-1': Input should be greater"),
        ("HYBRID_SCORER_RATE_LIMIT_PER_S", "0", "HYBRID_SCORER_RATE_LIMIT_PER_S='0': Input should be greater"),
        ("HYBRID_SCORER_MONITOR", "{bad", "HYBRID_SCORER_MONITOR: not valid JSON"),
    ],
)
def test_a_bad_setting_names_its_variable_and_the_cli_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        get_settings()
    assert str(raised.value).startswith(needle)
    assert main(["predict", "--title", "Why?", "--llm", "none"]) == 2
    assert needle in capsys.readouterr().err


def test_a_bad_flag_value_is_named_as_the_flag() -> None:
    with pytest.raises(ConfigurationError) as raised:
        get_settings(n_folds=1)
    assert str(raised.value) == "--n-folds=1: Input should be greater than or equal to 2"


def test_null_in_a_variable_turns_a_setting_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_SCORER_STEERING_LIMIT_LOG", "null")
    assert get_settings().steering_limit_log is None


def _identity(pooling: str, runtime: str = "llama-cpp-python 0.3.36") -> LLMIdentity:
    weights = {"sha256": "ab" * 32, "runtime": runtime, "weights": "q8_0"}
    return LLMIdentity(
        llm_model="embedded:m.gguf",
        prompt_version="assessment_v2@1",
        embedding_model="embedded:m.gguf",
        llm_identity={**weights, "pooling": pooling},
        embedding_identity={**weights, "source": "assessment-pass", "pooling": f"mean of the {pooling}'s tokens"},
    )


def test_a_model_is_not_served_with_another_pooling_and_the_fix_names_the_setting() -> None:
    """Same model file, same prompt, another pooling: the embedding columns would mean something else."""
    problems = _identity("title").mismatches(_identity("post"))
    assert len(problems) == 1  # the pooling, named once though both identities carry it
    assert 'pooling="mean of the title\'s tokens"' in problems[0] and "HYBRID_SCORER_LLM_POOLING" in problems[0]


def test_a_runtime_upgrade_alone_is_no_mismatch() -> None:
    assert _identity("title").mismatches(_identity("title", runtime="llama-cpp-python 0.4.0")) == []


def test_hybrid_scorer_llm_none_serves_the_content_model(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HYBRID_SCORER_LLM is the LLM serving uses, as `promote` assumes: 'none' serves the content model."""
    from hybrid_scorer.serving.models import ServedModels
    from hybrid_scorer.serving.spend import SpendLimit

    monkeypatch.setenv("HYBRID_SCORER_LLM", "none")
    settings = get_settings(cache_dir=model_dir.parent / "cache")
    served = ServedModels.load(model_dir, settings, SpendLimit(None, None), budget_ms=1000)
    assert served.hybrid is None and served.content is not None
    monkeypatch.delenv("HYBRID_SCORER_LLM")
    assert ServedModels.load(model_dir, get_settings(), SpendLimit(None, None), budget_ms=1000).hybrid is not None


def test_a_registry_reference_without_a_registry_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hybrid_scorer.registry import resolve_model_dir

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(MissingArtifactError, match="no registry here"):
        resolve_model_dir("models:/hybrid-scorer@champion")
    assert not (tmp_path / "mlflow.db").exists()  # and it created none


def test_a_missing_registered_model_is_named() -> None:
    from hybrid_scorer.registry import resolve_model_dir

    with pytest.raises(MissingArtifactError) as raised:
        resolve_model_dir("models:/nope@champion")
    assert str(raised.value).startswith("models:/nope@champion: Registered Model with name=nope not found")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("notaurl", "Could not parse"),
        ("postgres://u:secret@h/db", "Can't load plugin: sqlalchemy.dialects:postgres"),
        ("postgresql://u:secret@h:port/db", "invalid literal for int()"),  # a bad port: still masked
    ],
)
def test_a_bad_database_url_names_the_setting_and_its_form(url: str, needle: str) -> None:
    from hybrid_scorer.outcomes import OutcomeStore

    with pytest.raises(ConfigurationError) as raised:
        OutcomeStore(url)
    assert str(raised.value).startswith("HYBRID_SCORER_DATABASE_URL=")
    assert needle in str(raised.value) and "postgresql+psycopg://" in str(raised.value)
    assert "secret" not in str(raised.value)


def test_feedback_files_that_cannot_be_read_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty, text = tmp_path / "empty.csv", tmp_path / "bad.csv"
    empty.write_text("")
    text.write_text("prediction_id,score\n" + "a" * 32 + ",lots\n")
    assert main(["feedback", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    assert main(["feedback", str(empty)]) == 2
    assert "empty.csv: not a readable CSV file" in capsys.readouterr().err
    assert main(["feedback", str(text)]) == 2
    error = capsys.readouterr().err
    assert "line 2: invalid feedback: 'score'" in error and "prediction_id (32 hex characters)" in error


def test_the_monitor_skips_a_line_cut_short_and_counts_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hybrid_scorer.monitoring import read_log

    log = tmp_path / "predictions.jsonl"
    record = {"latency_ms": 2.0, "timestamp": "2026-12-05T10:00:00+00:00"}
    log.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n" + json.dumps(record)[:20])
    assert len(read_log(log)) == 2
    assert "skipped 1 line(s)" in caplog.text


def test_too_few_posts_for_the_folds_is_a_data_error() -> None:
    posts = synthetic_frame(40).drop_duplicates("title").head(4).assign(score=lambda f: pd.to_numeric(f["score"]))
    with pytest.raises(DataValidationError) as raised:
        grouped_folds(posts, n_folds=5)
    assert str(raised.value).startswith("4 post(s) with 4 distinct title(s) are too few for 5 folds")


def test_an_api_key_file_that_is_not_there_is_named() -> None:
    from hybrid_scorer.serving.access import ApiKeys

    with pytest.raises(ConfigurationError) as raised:
        ApiKeys.parse("/nonexistent/keys.txt")
    assert str(raised.value).startswith("HYBRID_SCORER_API_KEYS='/nonexistent/keys.txt': no such file")


def test_every_settings_default_is_within_its_bounds() -> None:
    """pydantic does not check defaults against a field's bounds: validating their dump does."""
    defaults = Settings.model_construct()
    assert Settings.model_validate(defaults.model_dump()) == defaults
