"""A ready LLMClient from a spec string and the settings: backend, prompt, result store, priced ledger."""

from __future__ import annotations

from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.llm.backends import make_backend
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.prompts import load_prompt
from hybrid_scorer.llm.protocol import backend_spec
from hybrid_scorer.llm.store import FeatureStore, open_store
from hybrid_scorer.llm.usage import LLMOutput, UsageLedger


def make_client(spec: str, settings: Settings | None = None, store: FeatureStore | None = None) -> LLMClient:
    """Results are read from and written to `store` (default: the Parquet feature store when the settings
    name one, else the diskcache). `settings.embedder` names a second backend for the embeddings (any
    chat LLM with any embedding model); by default the chat backend embeds. Chat calls are priced with
    the chat model's price, embeddings with the embedding model's."""
    settings = settings or get_settings()
    backend = make_backend(spec, settings)
    embedder = make_backend(settings.embedder, settings) if settings.embedder else backend
    chat, embedding = backend_spec(backend.name, backend.model), backend_spec(embedder.name, embedder.embedding_model)
    prices = settings.prices_per_million
    free = (0.0, 0.0)
    return LLMClient(
        backend,
        load_prompt(settings.prompt),
        cache=store if store is not None else open_store(settings.cache_dir, settings.features),
        ledger=UsageLedger(
            chat, {LLMOutput.ASSESSMENT: prices.get(chat, free), LLMOutput.EMBEDDING: prices.get(embedding, free)}
        ),
        max_retries=settings.llm_max_retries,
        embedder=embedder,
    )
