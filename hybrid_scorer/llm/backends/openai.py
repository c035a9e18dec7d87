"""`openai:<model>`: OpenAI, or any OpenAI-compatible server (OPENAI_BASE_URL). Structured Outputs with
OpenAI's strict schema, token logprobs for the rating expectations, embeddings.

The strict schema is derived by the SDK's own transformation (the one `chat.completions.parse` uses):
OpenAI's strict mode rejects pydantic's plain schema (a `description` beside a `$ref`, for one), and the
SDK tracks those rules as they change. `HYBRID_SCORER_OPENAI_RESPONSE_FORMAT=json_object` sends
{"type": "json_object", "schema": ...} instead, for servers without json_schema (llama-cpp-python's)."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from hybrid_scorer.config import Settings
from hybrid_scorer.errors import ConfigurationError
from hybrid_scorer.llm.protocol import RawEmbedding, RawReply, RemoteBackend, RemoteOptions, require_model
from hybrid_scorer.llm.ratings import expectations_from_token_logprobs

ResponseFormat = Literal["json_schema", "json_object"]


def strict_response_format(response_model: type[BaseModel]) -> dict[str, Any]:
    """{"type": "json_schema", "json_schema": {"name", "schema", "strict": True}} as the SDK builds it."""
    from openai.lib._parsing._completions import type_to_response_format_param

    return dict(type_to_response_format_param(response_model))  # type: ignore[arg-type]


class OpenAIOptions(RemoteOptions):
    """How the request is formatted is in the schema part of the cache key, so it is not identity."""

    base_url: str = Field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL", ""))
    response_format: ResponseFormat = Field(default="json_schema", exclude=True)


class OpenAIBackend(RemoteBackend):
    name: ClassVar[str] = "openai"
    is_local: ClassVar[bool] = False
    max_concurrency: ClassVar[int | None] = None
    Options: ClassVar[type[BaseModel]] = OpenAIOptions

    options: OpenAIOptions

    def _make_client(self) -> Any:
        from openai import OpenAI

        options = self.options
        api_key = os.environ.get("OPENAI_API_KEY") or ("not-needed" if options.base_url else None)
        if api_key is None:
            raise ConfigurationError(
                "openai backend: set OPENAI_API_KEY, or OPENAI_BASE_URL for a local compatible server"
            )
        # Retries are the LLM client's job (one policy for every backend), so the SDK's own are off.
        return OpenAI(base_url=options.base_url or None, api_key=api_key, timeout=options.timeout_s, max_retries=0)

    @classmethod
    def from_spec(cls, model: str, settings: Settings) -> OpenAIBackend:
        require_model(cls.name, model, "gpt-4o-mini")
        return cls(
            OpenAIOptions(
                model=model,
                timeout_s=settings.llm_timeout_s,
                response_format=settings.openai_response_format,
                embedding_model=settings.embedding_model,
            )
        )

    def embedding_identity(self) -> dict[str, Any]:
        return {"model": self.embedding_model, "base_url": self.options.base_url}

    def _response_format(self, response_model: type[BaseModel]) -> dict[str, Any]:
        if self.options.response_format == "json_object":
            return {"type": "json_object", "schema": response_model.model_json_schema()}
        return strict_response_format(response_model)

    def request_schema(self, response_model: type[BaseModel]) -> dict[str, Any]:
        return self._response_format(response_model)

    def warm(self) -> None:
        self.client.models.list()

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        response = self.client.chat.completions.create(
            model=self.options.model,
            messages=messages,
            response_format=self._response_format(response_model),
            temperature=self.options.temperature,
            logprobs=True,
            top_logprobs=self.options.top_logprobs,
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


BACKEND = OpenAIBackend
