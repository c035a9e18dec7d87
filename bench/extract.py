"""Throughput of the embedded backend next to raw llama.cpp on the same model and the same tokens.

For N posts (no cache), measures posts/s and tokens/s of `LLMClient.assess` and `LLMClient.embed`,
then the limit: llama.cpp evaluating exactly the same token streams (shared system prefix kept in the
KV cache, then each post's tokens plus its JSON answer in one batch) with none of our code around it.
Target: assess throughput >= 80% of raw. With --engine ray: the whole extraction in this process vs on
Ray Data with 1 and 2 actors (python bench/extract.py --engine ray -n 60)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.llm.backends.embedded import EmbeddedBackend
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.engines import extract_with_ray
from hybrid_scorer.llm.extract import extract, post_texts
from hybrid_scorer.llm.factory import make_client
from hybrid_scorer.llm.prompts import PostText, load_prompt
from hybrid_scorer.llm.store import MemoryStore


def _rate(label: str, n_posts: int, tokens: int, seconds: float) -> float:
    print(f"{label:<44} {n_posts / seconds:7.2f} posts/s {tokens / seconds:8.0f} tokens/s ({seconds:.1f} s)")
    return n_posts / seconds


def engines(texts: list[PostText], settings: Settings) -> None:
    """Posts/s of the whole extraction (assessment + embedding, nothing cached) in this process and on
    Ray Data with 1 and 2 actors on this machine, and what Ray adds per post."""
    import ray

    started = time.perf_counter()
    extract(make_client("embedded", settings, store=MemoryStore()), texts, progress=False)
    local_s = time.perf_counter() - started
    print(f"{'local engine (one process, all cores)':<44} {len(texts) / local_s:7.2f} posts/s ({local_s:.1f} s)")
    for actors in (1, 2):
        ray.init(num_cpus=actors, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter()
        run = extract_with_ray(texts, "embedded", settings, Path(tempfile.mkdtemp()), actors=actors)
        ray_s = time.perf_counter() - started
        ray.shutdown()
        assert run.sent == len(texts)
        llm_s = run.ledger.summary().llm_seconds  # time the actors spent in LLM calls
        overhead_ms = (ray_s * actors - llm_s) / len(texts) * 1000
        print(
            f"{f'ray engine, {actors} actor(s), 1 thread each':<44} {len(texts) / ray_s:7.2f} posts/s ({ray_s:.1f} s;"
            f" {llm_s / len(texts) * 1000:.0f} ms of LLM per post, ~{overhead_ms:.0f} ms of Ray per post and actor,"
            " start-up included)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("-n", type=int, default=100, help="posts to sample (default 100)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help="ray: compare the engines")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    texts = post_texts(posts.sample(args.n, random_state=0))
    if args.engine == "ray":
        engines(texts, settings)
        return
    backend = EmbeddedBackend()
    client = LLMClient(backend, load_prompt())  # no cache: every call is live
    client.assess(texts[0])  # load the model and the shared prefix outside the timing

    started = time.perf_counter()
    results = [client.assess(t) for t in texts]
    ours = _rate(
        "ours: LLMClient.assess (schema-scored)",
        len(texts),
        sum(r.usage.prompt_tokens + r.usage.completion_tokens for r in results),
        time.perf_counter() - started,
    )

    llm = backend._generator  # the same llama.cpp context, driven directly
    streams = []
    for text, result in zip(texts, results, strict=True):
        messages = client.prompt.messages(text)
        post_tokens = backend._start(messages)
        answer = backend._tokens(result.assessment.model_dump_json() if result.assessment else "{}")
        streams.append(post_tokens + answer)
    boundary = llm.n_tokens
    started = time.perf_counter()
    for stream in streams:
        llm.n_tokens = boundary
        llm.eval(stream)
    raw = _rate(
        "raw llama.cpp eval of the same tokens",
        len(texts),
        sum(len(s) + boundary for s in streams),
        time.perf_counter() - started,
    )
    print(f"assess: ours / raw = {ours / raw:.0%} (target >= 80%)")

    inputs = [t.embedding_input() for t in texts]
    client.embed(texts[0])  # load the embedding context outside the timing
    started = time.perf_counter()
    embedded = [client.embed(t) for t in texts]
    ours_embed = _rate(
        "ours: LLMClient.embed (mean pooling)",
        len(texts),
        sum(e.usage.prompt_tokens for e in embedded),
        time.perf_counter() - started,
    )
    started = time.perf_counter()
    counts = [backend._embedder.embed(i, return_count=True)[1] for i in inputs]
    raw_embed = _rate("raw llama.cpp Llama.embed", len(texts), int(np.sum(counts)), time.perf_counter() - started)
    print(f"embed: ours / raw = {ours_embed / raw_embed:.0%}")


if __name__ == "__main__":
    main()
