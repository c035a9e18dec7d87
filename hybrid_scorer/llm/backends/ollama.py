"""`ollama:<model>`: `chat(..., format=<JSON schema>)` for assessments, `embed` for vectors, host from
OLLAMA_HOST. Ollama turns the schema into a grammar (enums, $ref/$defs and integer bounds included), so
pydantic's schema goes as it is."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, Field

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.protocol import RawEmbedding, RawReply, RemoteBackend, RemoteOptions, require_model
from hybrid_scorer.llm.ratings import expectations_from_token_logprobs


def _get(obj: Any, name: str) -> Any:
    """Ollama responses are pydantic objects that also behave like dicts; tests may pass plain dicts."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


class OllamaOptions(RemoteOptions):
    host: str = Field(default_factory=lambda: os.environ.get("OLLAMA_HOST", ""))


class OllamaBackend(RemoteBackend):
    name: ClassVar[str] = "ollama"
    is_local: ClassVar[bool] = False
    max_concurrency: ClassVar[int | None] = None
    Options: ClassVar[type[BaseModel]] = OllamaOptions

    options: OllamaOptions

    def _make_client(self) -> Any:
        import ollama

        return ollama.Client(host=self.options.host or None, timeout=self.options.timeout_s)

    @classmethod
    def from_spec(cls, model: str, settings: Settings) -> OllamaBackend:
        require_model(cls.name, model, "qwen2.5:7b")
        return cls(
            OllamaOptions(model=model, timeout_s=settings.llm_timeout_s, embedding_model=settings.embedding_model)
        )

    def embedding_identity(self) -> dict[str, Any]:
        return {"model": self.embedding_model, "host": self.options.host}

    def request_schema(self, response_model: type[BaseModel]) -> dict[str, Any]:
        return response_model.model_json_schema()

    def warm(self) -> None:
        self.client.show(self.options.model)

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        response = self.client.chat(
            model=self.options.model,
            messages=messages,
            format=self.request_schema(response_model),
            options={"temperature": self.options.temperature},
            logprobs=True,
            top_logprobs=self.options.top_logprobs,
        )
        tokens = [
            (_get(t, "token") or "", {_get(a, "token"): _get(a, "logprob") for a in _get(t, "top_logprobs") or []})
            for t in _get(response, "logprobs") or []
        ]
        return RawReply(
            text=_get(_get(response, "message"), "content") or "",
            prompt_tokens=_get(response, "prompt_eval_count") or 0,
            completion_tokens=_get(response, "eval_count") or 0,
            expected=expectations_from_token_logprobs(tokens),
        )

    def embed(self, text: str) -> RawEmbedding:
        response = self.client.embed(model=self.embedding_model, input=text)
        return RawEmbedding(
            np.asarray(_get(response, "embeddings")[0], dtype=np.float32),
            prompt_tokens=_get(response, "prompt_eval_count") or 0,
        )


BACKEND = OllamaBackend
