"""Backends behind one protocol, chosen by a spec string: `embedded[:path.gguf]`, `ollama:<model>`,
`openai:<model>`, `mock`. Adding a backend = one module here + one line in `make_backend`."""

from __future__ import annotations

from pathlib import Path

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.cache import LLMCache
from hybrid_scorer.llm.client import Backend, LLMClient
from hybrid_scorer.llm.prompts import load_prompt
from hybrid_scorer.llm.usage import UsageLedger

SPEC_HELP = "embedded | embedded:/path/model.gguf | ollama:<model> | openai:<model> | mock"


def make_backend(spec: str, settings: Settings | None = None) -> Backend:
    settings = settings or Settings()
    kind, _, model = spec.partition(":")
    if kind == "embedded":
        from hybrid_scorer.llm.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(Path(model) if model else None)
    if kind == "mock":
        from hybrid_scorer.llm.backends.mock import MockBackend

        return MockBackend()
    if kind in {"ollama", "openai"} and not model:
        raise ValueError(
            f"LLM spec {spec!r} needs a model name, e.g. '{kind}:{'qwen2.5:7b' if kind == 'ollama' else 'gpt-4o-mini'}'"
        )
    if kind == "ollama":
        from hybrid_scorer.llm.backends.ollama import OllamaBackend

        return OllamaBackend(model, timeout_s=settings.llm_timeout_s, embedding_model=settings.embedding_model)
    if kind == "openai":
        from hybrid_scorer.llm.backends.openai import OpenAIBackend

        return OpenAIBackend(
            model,
            timeout_s=settings.llm_timeout_s,
            response_format=settings.openai_response_format,
            embedding_model=settings.embedding_model,
        )
    raise ValueError(f"unknown LLM spec {spec!r}; expected {SPEC_HELP}")


def make_client(spec: str, settings: Settings | None = None) -> LLMClient:
    """A client with the on-disk cache, retry policy and a ledger priced from the settings' table."""
    settings = settings or Settings()
    backend = make_backend(spec, settings)
    price = settings.prices_per_million.get(f"{backend.name}:{backend.model}", (0.0, 0.0))
    return LLMClient(
        backend,
        load_prompt(settings.prompt),
        cache=LLMCache(settings.cache_dir),
        ledger=UsageLedger(f"{backend.name}:{backend.model}", price),
        max_retries=settings.llm_max_retries,
    )
