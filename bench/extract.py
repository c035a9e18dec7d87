"""Extraction throughput of the embedded backend against the hardware's limit, on real posts.

1. The limit: llama.cpp's own prompt-processing rate on this machine for one long batch (512 tokens of
   posts) of the weights the backend runs, best of three. A post needs (its tokens after the shared
   system prefix + its answer's tokens); the limit in posts/s is the rate divided by that.
2. Ours: `extract` (assessment and embedding, nothing cached) through the project's LLMClient, posts/s
   and the share of the limit it reaches.
3. With --compare: the previous design on the same posts (the shipped Q4_1 file, the embedding from a
   second pass in its own context), and flash attention on (faster; counts the answers it changes).
4. With --questions: the prompt with 12 yes/no questions (assessment_v3) on the same posts.
5. With --pooling: the embedding pooled over the whole post (the design before the defence against text
   written at the LLM) and the sentence pooling against the pooling over the title, on the same posts:
   what each defence costs in extraction time.
6. With --batching: B posts per llama.cpp decode in B sequences sharing the prefix, B = 1, 2, 4, 8:
   posts/s and the largest logit difference from decoding each post alone.
With --engine ray: the whole extraction in this process vs on Ray Data with 1 and 2 actors."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.llm.backends.embedded import EmbeddedBackend, EmbeddedOptions, _fields
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.engines import extract_with_ray
from hybrid_scorer.llm.extract import Extraction, extract, post_texts
from hybrid_scorer.llm.factory import make_client
from hybrid_scorer.llm.prompts import PostText, load_prompt
from hybrid_scorer.llm.schema import RATING_FIELDS, PostAssessment
from hybrid_scorer.llm.store import MemoryStore


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


def prompt_processing_rate(backend: EmbeddedBackend, tokens: list[int]) -> float:
    """llama.cpp's tokens/s for one batch of `tokens` from an empty context (best of three)."""
    llm = backend._llm()
    best = 0.0
    for _ in range(3):
        llm.n_tokens = 0
        started = time.perf_counter()
        backend._decode(tokens, [len(tokens) - 1])
        best = max(best, len(tokens) / (time.perf_counter() - started))
    llm.n_tokens = 0  # the next post evaluates the shared prefix again
    return best


def timed_extraction(
    backend: EmbeddedBackend, texts: list[PostText], prompt: str | None = None
) -> tuple[float, Extraction]:
    """Posts/s of a cold extraction (model loaded and prefix evaluated outside the timing)."""
    client = LLMClient(backend, load_prompt(prompt) if prompt else load_prompt(), cache=MemoryStore())
    extract(client, texts[:1], progress=False)
    started = time.perf_counter()
    out = extract(client, texts[1:], progress=False)
    return (len(texts) - 1) / (time.perf_counter() - started), out


class FlashAttentionBackend(EmbeddedBackend):
    def _context_options(self, embedding: bool) -> dict[str, Any]:
        return {**super()._context_options(embedding), "flash_attn": True}


def compare(texts: list[PostText], ours: float, reference: Extraction) -> None:
    old, _ = timed_extraction(EmbeddedBackend(EmbeddedOptions(weights="as-shipped", embedding="separate")), texts)
    print(f"{'previous: shipped Q4_1, embedding in a 2nd pass':<48} {old:6.2f} posts/s; ours is {ours / old:.2f}x")
    fast, flash = timed_extraction(FlashAttentionBackend(), texts)
    assert reference.assessments is not None and flash.assessments is not None
    columns = ["topic", "question_clarity", "novelty", "predicted_interest"]
    changed = int((reference.assessments[columns] != flash.assessments[columns]).any(axis=1).sum())
    print(
        f"{'with flash attention':<48} {fast:6.2f} posts/s ({fast / ours:.2f}x), but {changed}/{len(texts) - 1}"
        " answers differ from the exact greedy answer"
    )


def questions(backend: EmbeddedBackend, texts: list[PostText], ours: float, reference: Extraction) -> None:
    """The prompt with yes/no questions (assessment_v3) on the same posts: its speed and tokens per post."""
    asked, run = timed_extraction(backend, texts, "assessment_v3")
    for label, rate, extraction in (("default prompt", ours, reference), ("with 12 yes/no questions", asked, run)):
        calls = [r.usage for r in extraction.results if r.usage.kind == "assess"]  # the one pass per post
        tokens = np.mean([u.prompt_tokens + u.completion_tokens for u in calls])
        print(f"{label:<48} {rate:6.2f} posts/s; {tokens:.0f} LLM tokens per post (ledger, shared prefix included)")
    print(f"the questions cost {ours / asked:.2f}x the LLM time per post: {1000 / asked:.0f} s per 1,000 posts")


def pooling(texts: list[PostText], ours: float) -> None:
    """The pooling before the defence (every token of the post) and the sentence pooling on the same posts,
    and the title pooling again after them (the machine's drift between the runs shows in the two title
    rates)."""
    before, _ = timed_extraction(EmbeddedBackend(EmbeddedOptions(pooling="post")), texts)
    sentences, _ = timed_extraction(EmbeddedBackend(EmbeddedOptions(pooling="sentences")), texts)
    again, _ = timed_extraction(EmbeddedBackend(), texts)
    title = np.mean([ours, again])
    print(f"{'pooled over the whole post (before the defence)':<48} {before:6.2f} posts/s")
    print(f"{'median of the title and body sentences':<48} {sentences:6.2f} posts/s")
    print(f"{'pooled over the title (served), again':<48} {again:6.2f} posts/s")
    print(f"the title pooling's extraction time: {before / title:.2f}x the whole-post pooling's")
    print(f"the sentence pooling's extraction time: {before / sentences:.2f}x the whole-post pooling's")


def decode(ctx: Any, batch: Any, groups: list[tuple[int, list[int], int]]) -> list[int]:
    """One llama_decode of (sequence, tokens, first position) groups; the batch index of each group's
    last token, the only one whose logits are computed."""
    b, n, last = batch.batch, 0, []
    for seq, tokens, start in groups:
        for i, token in enumerate(tokens):
            b.token[n], b.pos[n], b.seq_id[n][0], b.n_seq_id[n] = token, start + i, seq, 1
            b.logits[n] = i == len(tokens) - 1
            n += 1
        last.append(n - 1)
    b.n_tokens = n
    ctx.decode(batch)
    return last


def batching(backend: EmbeddedBackend, texts: list[PostText]) -> None:
    """B posts per decode, each in its own sequence (non-unified KV cache) after the shared prefix."""
    import llama_cpp
    from llama_cpp._internals import LlamaBatch, LlamaContext

    prompt = load_prompt()
    streams = [backend._start(prompt.messages(t))[0] for t in texts]
    prefix = list(backend._generator.input_ids[: backend._generator.n_tokens])
    n_vocab = backend._generator.n_vocab()
    reference: list[np.ndarray] = []
    for size in (1, 2, 4, 8):
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = 2048 * size, 2048 * size, 512
        params.n_seq_max, params.kv_unified = size, False
        params.n_threads = params.n_threads_batch = backend.n_threads
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        ctx = LlamaContext(model=backend._generator._model, params=params, verbose=False)
        batch = LlamaBatch(n_tokens=2048 * size, embd=0, n_seq_max=size, verbose=False)

        decode(ctx, batch, [(0, prefix, 0)])
        logits: list[np.ndarray] = []
        started = time.perf_counter()
        for first in range(0, len(streams), size):
            group = streams[first : first + size]
            for seq in range(size):  # back to the prefix alone in sequence 0, copied to the others
                llama_cpp.llama_memory_seq_rm(ctx.memory, seq, len(prefix) if seq == 0 else 0, -1)
            for seq in range(1, len(group)):
                llama_cpp.llama_memory_seq_cp(ctx.memory, 0, seq, -1, -1)
            for i in decode(ctx, batch, [(seq, tokens, len(prefix)) for seq, tokens in enumerate(group)]):
                pointer = llama_cpp.llama_get_logits_ith(ctx.ctx, i)
                logits.append(np.ctypeslib.as_array(pointer, shape=(n_vocab,)).copy())
        rate = len(streams) / (time.perf_counter() - started)
        reference = reference or logits
        difference = max(float(np.abs(a - b).max()) for a, b in zip(reference, logits, strict=True))
        print(f"batched decode, {size} post(s) per decode {rate:8.2f} posts/s  max |logit - alone| {difference:.3f}")
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("-n", type=int, default=100, help="posts to sample (default 100)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help="ray: compare the engines")
    parser.add_argument("--compare", action="store_true", help="also time the previous design and flash attention")
    parser.add_argument("--batching", action="store_true", help="also time B posts per llama.cpp decode")
    parser.add_argument("--questions", action="store_true", help="also time the yes/no question prompt (v3)")
    parser.add_argument(
        "--pooling", action="store_true", help="also time the embedding pooled over the whole post and by sentences"
    )
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    texts = post_texts(posts.sample(args.n, random_state=0))
    if args.engine == "ray":
        engines(texts, settings)
        return
    backend = EmbeddedBackend()
    ours, extraction = timed_extraction(backend, texts)
    prompt = load_prompt()
    assert extraction.assessments is not None
    fields = _fields(PostAssessment.model_json_schema())
    ratings = extraction.assessments[list(RATING_FIELDS)].astype(int).to_numpy().tolist()
    answers = [backend._answer_tokens(fields, [*values, None], 0, False)[0] for values in ratings]  # as fed
    post_tokens = [backend._start(prompt.messages(t))[0] for t in texts[1:]]
    per_post = float(np.mean([len(p) + len(a) for p, a in zip(post_tokens, answers, strict=True)]))
    rate = prompt_processing_rate(backend, [t for p in post_tokens for t in p][:512])
    limit = rate / per_post
    print(f"weights {backend._weights_file().name}; llama.cpp prompt processing (512 tokens) {rate:6.0f} tokens/s")
    print(f"tokens per post after the shared prefix (post + answer)   {per_post:6.1f}")
    print(f"{'hardware limit':<48} {limit:6.2f} posts/s")
    label = "ours: extract (assessment + embedding, one pass)"
    print(f"{label:<48} {ours:6.2f} posts/s = {ours / limit:.0%} of the limit")
    print(f"full dataset (3,707 posts) at this rate: {3707 / ours / 60:.1f} min")
    if args.compare:
        compare(texts, ours, extraction)
    if args.pooling:
        pooling(texts, ours)
    if args.questions:
        questions(backend, texts, ours, extraction)
    if args.batching:
        batching(backend, texts[1:])


if __name__ == "__main__":
    main()
