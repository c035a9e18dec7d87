"""OpenAI or any OpenAI-compatible server (OPENAI_BASE_URL): Structured Outputs, logprobs, embeddings.

`response_format="json_object"` sends {"type": "json_object", "schema": ...} for servers without
json_schema support (llama-cpp-python's server is one)."""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np

from hybrid_scorer.llm.client import RawEmbedding, RawReply
from hybrid_scorer.llm.ratings import expectations_from_token_logprobs

TOP_LOGPROBS = 5


class OpenAIBackend:
    name = "openai"
    is_local = False

    def __init__(
        self,
        model: str,
        timeout_s: float = 60.0,
        response_format: Literal["json_schema", "json_object"] = "json_schema",
        embedding_model: str | None = None,
        client: Any = None,
    ) -> None:
        self.model = model
        self.embedding_model = embedding_model or model
        self.response_format = response_format
        self._base_url = os.environ.get("OPENAI_BASE_URL", "")
        if client is None:
            from openai import OpenAI

            base_url = os.environ.get("OPENAI_BASE_URL")
            api_key = os.environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
            if api_key is None:
                raise ValueError("openai backend: set OPENAI_API_KEY, or OPENAI_BASE_URL for a local compatible server")
            # Retries are the client's job (one policy for every backend), so the SDK's own are off.
            client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)
        self.client = client

    @property
    def params(self) -> dict[str, Any]:
        return {"temperature": 0, "response_format": self.response_format, "base_url": self._base_url}

    @property
    def embedding_params(self) -> dict[str, Any]:
        return {"embedding_model": self.embedding_model, "base_url": self._base_url}

    def _format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.response_format == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "PostAssessment", "schema": schema, "strict": True}}

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> RawReply:
        response = self.client.chat.completions.create(
            model=self.model,
            messages=messages,
            response_format=self._format(schema),
            temperature=0,
            logprobs=True,
            top_logprobs=TOP_LOGPROBS,
        )
        choice = response.choices[0]
        content = getattr(choice.logprobs, "content", None) or []
        tokens = [(t.token, {a.token: a.logprob for a in (t.top_logprobs or [])}) for t in content]
        usage = response.usage
        return RawReply(
            text=choice.message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            expected=expectations_from_token_logprobs(tokens),
        )

    def embed(self, text: str) -> RawEmbedding:
        response = self.client.embeddings.create(model=self.embedding_model, input=text)
        return RawEmbedding(
            np.asarray(response.data[0].embedding, dtype=np.float32),
            prompt_tokens=getattr(response.usage, "prompt_tokens", 0) or 0,
        )
