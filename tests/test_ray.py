"""The Ray engine on a local Ray instance (2 CPUs): same features as in-process extraction (bit for bit
with the embedded model), resumable after a real interruption, and a store that `train` reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_scorer.cli import main
from hybrid_scorer.config import Settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.llm.extract import extract, post_texts
from hybrid_scorer.llm.factory import make_client
from hybrid_scorer.llm.store import ParquetStore

ray = pytest.importorskip("ray", reason="the [cluster] extra (ray[data]) is not installed")
pytestmark = pytest.mark.integration
N = 24  # posts in the interruption test: enough that the kill lands well before the end


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _same_features(settings: Settings, spec: str, posts: pd.DataFrame, store: Path) -> None:
    """The Ray-written store and an in-process extraction give identical tables and vectors."""
    local = extract(make_client(spec, settings), posts, progress=False)
    from_store = extract(make_client(spec, settings, store=ParquetStore(store)), posts, progress=False)
    assert from_store.assessments is not None and local.assessments is not None
    assert from_store.assessments["cache_hit"].all()  # everything came from the store
    columns = [c for c in local.assessments.columns if c != "cache_hit"]
    pd.testing.assert_frame_equal(from_store.assessments[columns], local.assessments[columns], check_exact=True)
    assert from_store.embeddings.keys() == local.embeddings.keys()
    for post_id, vector in local.embeddings.items():
        np.testing.assert_array_equal(from_store.embeddings[post_id], vector)


def _ray_extract(csv: Path, spec: str, limit: int, tmp_path: Path, *extra: str) -> int:
    args = ["extract", "--engine", "ray", "--data", str(csv), "--llm", spec, "--limit", str(limit), "-q"]
    return main([*args, "--features", str(tmp_path / "store"), "--out", str(tmp_path / "ex"), *extra])


def test_mock_features_from_ray_equal_in_process_ones(
    csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ray_extract(csv_path, "mock", 40, tmp_path, "--batch-size", "5") == 0
    assert "40 of 40 posts were missing" in capsys.readouterr().out
    posts = prepare_posts(csv_path)[0].head(40)
    _same_features(Settings(cache_dir=tmp_path / "local-cache"), "mock", posts, tmp_path / "store")
    # the store feeds train, which then asks the LLM for nothing (no new shard is written)
    shards = sorted((tmp_path / "store").rglob("*.parquet"))
    csv40 = tmp_path / "posts40.csv"
    pd.read_csv(csv_path).drop_duplicates("url").head(40).to_csv(csv40, index=False)
    args = ["train", "--data", str(csv40), "--llm", "mock", "--features", str(tmp_path / "store"), "-q"]
    assert main([*args, "--out", str(tmp_path / "models"), "--no-register"]) == 0
    assert (tmp_path / "models" / "hybrid" / "manifest.json").is_file()
    assert sorted((tmp_path / "store").rglob("*.parquet")) == shards
    # a rerun sends nothing
    assert _ray_extract(csv_path, "mock", 40, tmp_path) == 0
    assert "0 of 40 posts were missing" in capsys.readouterr().out


def _gguf() -> Path:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed")
    from hybrid_scorer.llm.backends.embedded import find_smollm2_gguf

    try:
        return find_smollm2_gguf()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_embedded_features_from_ray_are_bit_identical(csv_path: Path, tmp_path: Path) -> None:
    _gguf()
    assert _ray_extract(csv_path, "embedded", 10, tmp_path, "--batch-size", "3") == 0
    posts = prepare_posts(csv_path)[0].head(10)
    _same_features(Settings(cache_dir=tmp_path / "local-cache"), "embedded", posts, tmp_path / "store")


def test_an_interrupted_run_resumes_without_recomputing(csv_path: Path, tmp_path: Path) -> None:
    """A real interruption: the extraction process is killed once some batches are written; the rerun
    sends only the posts that are not in the store."""
    _gguf()
    store = tmp_path / "store"
    command = [sys.executable, "-m", "hybrid_scorer.cli", "extract", "--engine", "ray", "--data", str(csv_path)]
    command += ["--llm", "embedded", "--limit", str(N), "--batch-size", "2", "--actors", "1", "-q"]
    command += ["--features", str(store), "--out", str(tmp_path / "ex")]
    texts = post_texts(prepare_posts(csv_path)[0].head(N))
    client = make_client("embedded", Settings(cache_dir=tmp_path / "unused"))

    def finished() -> int:
        written = ParquetStore(store)
        return sum(client.assessment_key(t) in written and client.embedding_key(t) in written for t in texts)

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while finished() < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)  # the driver, mid-run
    process.wait()
    done, stable_since = finished(), time.monotonic()
    while time.monotonic() - stable_since < 4:  # batches already handed to the actor may still land
        time.sleep(0.5)
        if (now := finished()) != done:
            done, stable_since = now, time.monotonic()
    assert 2 <= done < N, "the kill must land mid-run for this test to mean anything"
    rerun = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"ray: {N - done} of {N} posts were missing" in rerun.stdout
    assert finished() == N
