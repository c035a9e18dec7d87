"""Ollama: `chat(..., format=<JSON schema>)` for assessments, `embed` for vectors. Host from OLLAMA_HOST."""

from __future__ import annotations

from typing import Any

import numpy as np

from hybrid_scorer.llm.client import RawEmbedding, RawReply
from hybrid_scorer.llm.ratings import expectations_from_token_logprobs

TOP_LOGPROBS = 5


def _get(obj: Any, name: str) -> Any:
    """Ollama responses are pydantic objects that also behave like dicts; tests may pass plain dicts."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


class OllamaBackend:
    name = "ollama"
    is_local = False

    def __init__(
        self, model: str, timeout_s: float = 60.0, embedding_model: str | None = None, client: Any = None
    ) -> None:
        import ollama

        self.model = model
        self.embedding_model = embedding_model or model
        self.client = client or ollama.Client(timeout=timeout_s)  # host defaults to $OLLAMA_HOST

    @property
    def params(self) -> dict[str, Any]:
        return {"temperature": 0}

    @property
    def embedding_params(self) -> dict[str, Any]:
        return {"embedding_model": self.embedding_model}

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> RawReply:
        response = self.client.chat(
            model=self.model,
            messages=messages,
            format=schema,
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
            server_ms=(_get(response, "total_duration") or 0) / 1e6,
            expected=expectations_from_token_logprobs(tokens),
        )

    def embed(self, text: str) -> RawEmbedding:
        response = self.client.embed(model=self.embedding_model, input=text)
        return RawEmbedding(
            np.asarray(_get(response, "embeddings")[0], dtype=np.float32),
            prompt_tokens=_get(response, "prompt_eval_count") or 0,
        )
