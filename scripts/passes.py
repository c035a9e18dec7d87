"""Per-post arrays read off the embedded LLM's assessment pass, kept on disk for the experiments that
need more of the pass than the served embedding (scripts/llm_ab.py's part means, scripts/attention.py's
title tokens): one npz per kind, no pickle, written every 200 posts so an interrupted run resumes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import PostText, load_prompt

Arrays = dict[str, np.ndarray]
# what an experiment keeps of one post's pass: (the backend, the post's prompt messages) -> arrays, read
# with EmbeddedBackend.span_means
Read = Callable[[EmbeddedBackend, list[dict[str, str]]], Arrays]


def load_ragged(path: Path) -> dict[str, Arrays]:
    """Per key, the arrays `save_ragged` wrote (each field's rows of that key)."""
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as saved:  # each saved[name] reads the array anew: once each
        arrays = {name: saved[name] for name in saved.files}
    keys, sizes = arrays.pop("keys"), arrays.pop("sizes")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return {
        str(key): {name: values[a:b] for name, values in arrays.items()}
        for key, a, b in zip(keys, bounds[:-1], bounds[1:], strict=True)
    }


def save_ragged(path: Path, kept: dict[str, Arrays]) -> None:
    """Per key, arrays sharing their first dimension, in one npz, replaced atomically."""
    keys = list(kept)
    fields = list(next(iter(kept.values()))) if kept else []
    staged = path.with_suffix(".tmp.npz")
    np.savez(
        staged,
        keys=np.array(keys),
        sizes=np.array([len(kept[k][fields[0]]) for k in keys]),
        **{name: np.concatenate([kept[k][name] for k in keys]) for name in fields},
    )
    staged.replace(path)


def kept_per_post(
    posts: pd.DataFrame, settings: Settings, prompt: str, options: EmbeddedOptions, name: str, read: Read
) -> list[Arrays]:
    """`read` of each post's assessment prompt (its pass up to the answer: causal attention, so the answer
    cannot change it), kept by the embedding's cache key under these options in
    `<cache_dir>/<name>.npz`; missing posts are read on the way."""
    backend = EmbeddedBackend(options)
    client = LLMClient(backend, load_prompt(prompt))
    path = settings.cache_dir / f"{name}.npz"
    kept = load_ragged(path)
    columns = (posts["post_id"], posts["title_clean"], posts["body_clean"])
    texts = [PostText(p, t, b) for p, t, b in zip(*columns, strict=True)]
    keys = [client.embedding_key(text) for text in texts]
    missing = [(k, t) for k, t in zip(keys, texts, strict=True) if k not in kept]
    for n, (key, text) in enumerate(tqdm(missing, desc=name.replace("_", " "), disable=not missing), start=1):
        kept[key] = read(backend, client.prompt.messages(text))
        if n % 200 == 0 or n == len(missing):
            save_ragged(path, kept)
    return [kept[k] for k in keys]
