"""The LLM setup's fields, declared once: a model manifest carries them (all None for a model trained
without an LLM), and `LLMIdentity` (llm/identity.py) is the same fields with the LLM required. Pydantic
alone, so the model layer can carry them without importing the LLM clients."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class LLMFields(BaseModel):
    llm_spec: str | None = None  # as the user gave it (`embedded`, `openai:gpt-4o-mini`)
    llm_model: str | None = None  # resolved backend:model, what serving must call
    prompt_version: str | None = None  # version@hash of the prompt text
    embedder_spec: str | None = None  # `--embedder` as the user gave it; None: the chat backend embeds
    embedding_model: str | None = None  # resolved backend:embedding model, what serving must embed with
    llm_identity: dict[str, Any] | None = None  # the backend's identity(): model, weights hash, decoding
    embedding_identity: dict[str, Any] | None = None
