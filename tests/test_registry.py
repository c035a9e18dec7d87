"""The MLflow model registry for real: a SQLite tracking store, train -> register -> promote, a worse
candidate refused, loading through mlflow.pyfunc and through `serve`, rollback by moving the alias."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from hybrid_scorer.cli import main
from hybrid_scorer.config import Settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.pipeline import Job
from hybrid_scorer.registry import CHAMPION, REGISTERED_NAME, PromotionRefusedError, champion, promote
from hybrid_scorer.serving import Predictor
from hybrid_scorer.training import train_and_save
from tests.test_service import _start, _stop

CHAMPION_URI = f"models:/{REGISTERED_NAME}@{CHAMPION}"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _train(csv: Path, out: Path, tmp_path: Path, shuffle: bool = False) -> list[str]:
    posts, report = prepare_posts(csv)
    if shuffle:  # a worse candidate: the scores no longer belong to their posts
        posts = posts.assign(score=np.random.default_rng(0).permutation(posts["score"].to_numpy()))
    settings = Settings(data_path=csv, cache_dir=tmp_path / "cache", embedding_components=4)
    return train_and_save(Job(posts, report, settings, "mock", progress=False), out).summary()


def test_train_register_promote_refuse_load_serve_and_roll_back(
    store: str, csv_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow

    assert any("registered as version 1" in line for line in _train(csv_path, tmp_path / "v1", tmp_path))
    assert champion() is None
    assert main(["promote", "--llm", "mock"]) == 0 and "champion is now version 1" in capsys.readouterr().out
    first = champion()
    assert first is not None and first.version == 1 and first.tags["llm_model"] == "mock:mock-v1"

    # a worse candidate is registered but refused, and the champion stays
    _train(csv_path, tmp_path / "v2", tmp_path, shuffle=True)
    with pytest.raises(PromotionRefusedError, match="below the 95% interval of the champion"):
        promote(2, "mock", Settings())
    assert main(["promote", "--version", "2", "--llm", "mock"]) == 1
    assert "refused:" in capsys.readouterr().err and champion().version == 1  # type: ignore[union-attr]
    # a model trained with one LLM is never promoted for serving with another
    with pytest.raises(PromotionRefusedError, match="trained with LLM 'mock:mock-v1'"):
        promote(1, "ollama:qwen2.5:7b", Settings(), force=True)
    # ... nor with another embedder (the gate checks what serving checks), and comparing a hosted setup
    # needs no API key: the refusal names the LLM, not a missing OPENAI_API_KEY
    with pytest.raises(
        PromotionRefusedError, match=r"trained on embeddings of 'mock:mock-v1'.*serve without --embedder"
    ):
        promote(1, "mock", Settings(embedder="ollama:nomic-embed-text"), force=True)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PromotionRefusedError, match="serving would call 'openai:gpt-4o-mini'"):
        promote(1, "openai:gpt-4o-mini", Settings(), force=True)

    # MLflow's own API reads runs and the champion, and the pyfunc scores like predict() does
    assert len(mlflow.search_runs(experiment_names=["hybrid-scorer"])) >= 3
    posts = pd.DataFrame([{"title": "Why is the black hole gravity so strong?", "body": "x"}, {"body": "no title"}])
    scored = mlflow.pyfunc.load_model(CHAMPION_URI).predict(posts)
    direct = Predictor(tmp_path / "v1", Settings(cache_dir=tmp_path / "cache"), log_path=tmp_path / "p.jsonl")
    assert scored["score"].iloc[0] == pytest.approx(direct.predict(posts.iloc[0].to_dict()).score)
    assert np.isnan(scored["score"].iloc[1]) and "'title'" in scored["error"].iloc[1]

    # serve by alias: the served model is the champion's
    service = _start(CHAMPION_URI, tmp_path, cache_dir=tmp_path / "cache")
    try:
        served = httpx.get(service.url + "/v1/model").json()["hybrid"]
        assert served["training_data_hash"] == direct.models.hybrid.manifest_.training_data_hash  # type: ignore[union-attr]
        assert httpx.post(service.url + "/v1/predict", json=posts.iloc[0].to_dict()).json()["cache_hit"]
    finally:
        assert _stop(service)

    # rollback is moving the alias: forward to 2 by force, then back to 1 through the gate
    assert main(["promote", "--version", "2", "--llm", "mock", "--force"]) == 0
    assert champion().version == 2  # type: ignore[union-attr]
    assert main(["promote", "--version", "1", "--llm", "mock"]) == 0
    assert champion().version == 1  # type: ignore[union-attr]
