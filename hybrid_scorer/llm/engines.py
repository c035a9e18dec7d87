"""Extraction beyond one process: Ray Data `map_batches` over an actor pool, writing a Parquet feature
store (llm/store.py). Each actor builds the project's own LLMClient once (one embedded GGUF per actor,
or a client to a remote OpenAI/Ollama endpoint) and returns, per batch, exactly the entries the local
cache would hold, plus a usage entry per call. The driver anti-joins the posts against the store first,
so a rerun sends only what is missing; a killed worker loses at most its in-flight batch.

Runs the same on a laptop (`ray.init()` with local CPUs) and on a cluster (`--address`); on a cluster
the store directory must be one every node can write (a shared filesystem, or a pyarrow URI)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.extract import missing
from hybrid_scorer.llm.factory import make_client
from hybrid_scorer.llm.prompts import PostText
from hybrid_scorer.llm.store import MemoryStore, ParquetStore
from hybrid_scorer.llm.usage import Usage, UsageLedger

log = logging.getLogger(__name__)


class ExtractActor:
    """One LLM client per actor; `__call__` extracts a batch of posts into store rows."""

    def __init__(self, spec: str, settings_json: str, run_id: str, assessments: bool, embeddings: bool) -> None:
        self.client = make_client(spec, Settings.model_validate_json(settings_json), store=MemoryStore(run_id))
        self.run_id = run_id
        self.assessments = assessments
        self.embeddings = embeddings

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        store = MemoryStore(self.run_id)
        self.client.cache = store
        for post_id, title, body in zip(batch["post_id"], batch["title"], batch["body"], strict=True):
            post = PostText(post_id, title, body)
            if self.assessments:  # first, as in `extract`: a one-pass backend caches the embedding with it
                self._record(store, post_id, self.client.assess(post).usage)
            if self.embeddings:
                self._record(store, post_id, self.client.embed(post).usage)
        return store.rows()

    def _record(self, store: MemoryStore, post_id: str, usage: Usage) -> None:
        store.set_json(f"usage:{self.run_id}:{post_id}:{usage.kind}", usage.model_dump())


@dataclass
class RayRun:
    sent: int  # posts sent to the actors (the rest were in the store already)
    ledger: UsageLedger  # this run's calls, as the actors reported them
    store: ParquetStore  # the store with this run's shards read in


def extract_with_ray(
    texts: list[PostText],
    spec: str,
    settings: Settings,
    store_dir: Path,
    assessments: bool = True,
    embeddings: bool = True,
    actors: int = 2,
    address: str | None = None,
    batch_size: int = 8,
) -> RayRun:
    """Send the posts missing from the Parquet store at `store_dir` through an actor pool; new shards
    land in the same directory. Returns how many posts were sent and the run's ledger."""
    import ray

    store = ParquetStore(store_dir)
    client = make_client(spec, settings, store=store)
    todo = missing(client, texts, assessments, embeddings)
    run_id = f"ray-{uuid.uuid4().hex[:12]}"
    ledger = UsageLedger(client.ledger.backend, client.ledger.prices)
    if not todo:
        return RayRun(0, ledger, store)
    if not ray.is_initialized():
        # locally: a CPU per actor plus one logical CPU, so shards are written while the actors work
        # (with every CPU held by an actor, Ray Data holds the writes back until the end)
        options: dict[str, Any] = {"address": address} if address else {"num_cpus": actors + 1}
        ray.init(**options, include_dashboard=False, log_to_driver=False)
    # each actor's llama.cpp uses the CPU the actor reserves, not every core of the node
    actor_settings = settings.model_copy(update={"llm_threads": 1}) if client.backend.is_local else settings
    frame = pd.DataFrame(
        {"post_id": [t.post_id for t in todo], "title": [t.title for t in todo], "body": [t.body for t in todo]}
    )
    # one block per batch, made here: a repartition task would wait for a CPU the actors hold
    dataset = ray.data.from_pandas([frame.iloc[i : i + batch_size] for i in range(0, len(frame), batch_size)])
    dataset.map_batches(
        ExtractActor,
        fn_constructor_kwargs={
            "spec": spec,
            "settings_json": actor_settings.model_dump_json(),
            "run_id": run_id,
            "assessments": assessments,
            "embeddings": embeddings,
        },
        batch_size=batch_size,
        batch_format="pandas",
        concurrency=actors,
        num_cpus=1,
    ).write_parquet(str(store_dir), ray_remote_args={"num_cpus": 0.1})  # writing is I/O: no core of its own
    store.reload()
    for record in store.usage_records(run_id):
        ledger.record(Usage.model_validate(record))
    return RayRun(len(todo), ledger, store)
