"""`ollama:<model>`: `chat(..., format=<JSON schema>)` for assessments, `embed` for vectors, host from
OLLAMA_HOST. Ollama turns the schema into a grammar (enums, $ref/$defs and integer bounds included), so
pydantic's schema goes as it is."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.protocol import RawEmbedding, RawReply, require_model
from hybrid_scorer.llm.ratings import expectations_from_token_logprobs

TOP_LOGPROBS = 5


def _get(obj: Any, name: str) -> Any:
    """Ollama responses are pydantic objects that also behave like dicts; tests may pass plain dicts."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


class OllamaBackend:
    name: ClassVar[str] = "ollama"
    is_local: ClassVar[bool] = False

    def __init__(
        self, model: str, timeout_s: float = 60.0, embedding_model: str | None = None, client: Any = None
    ) -> None:
        import ollama

        self._model = model
        self._embedding_model = embedding_model or model
        self.host = os.environ.get("OLLAMA_HOST", "")
        self.client = client or ollama.Client(timeout=timeout_s)  # host defaults to $OLLAMA_HOST

    @classmethod
    def from_spec(cls, model: str, settings: Settings) -> OllamaBackend:
        require_model(cls.name, model, "qwen2.5:7b")
        return cls(model, timeout_s=settings.llm_timeout_s, embedding_model=settings.embedding_model)

    @property
    def model(self) -> str:
        return self._model

    @property
    def embedding_model(self) -> str:
        return self._embedding_model

    def identity(self) -> dict[str, Any]:
        return {"model": self._model, "host": self.host, "temperature": 0, "top_logprobs": TOP_LOGPROBS}

    def embedding_identity(self) -> dict[str, Any]:
        return {"model": self._embedding_model, "host": self.host}

    def request_schema(self, response_model: type[BaseModel]) -> dict[str, Any]:
        return response_model.model_json_schema()

    def warm(self) -> None:
        self.client.show(self._model)

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        response = self.client.chat(
            model=self._model,
            messages=messages,
            format=self.request_schema(response_model),
            options={"temperature": 0},
            logprobs=True,
            top_logprobs=TOP_LOGPROBS,
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
        response = self.client.embed(model=self._embedding_model, input=text)
        return RawEmbedding(
            np.asarray(_get(response, "embeddings")[0], dtype=np.float32),
            prompt_tokens=_get(response, "prompt_eval_count") or 0,
        )


BACKEND = OllamaBackend
