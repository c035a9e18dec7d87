"""What every LLM backend is: one raw chat call and one raw embedding call behind a small protocol.

Backends know their transport and nothing else; caching, retries, re-asks, validation and the ledger
live in `LLMClient`. A backend's `identity()` is everything about it that can change an answer (the
model, its weights' hash, the runtime, decoding parameters): it goes into every cache key and into the
model manifest, so a changed backend can never be served a stale answer or a mismatched model."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hybrid_scorer.config import Settings
from hybrid_scorer.errors import ConfigurationError


@dataclass
class RawReply:
    """What a backend returns for one chat call."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    expected: dict[str, float] = field(default_factory=dict)  # probability-weighted ratings, if available
    embedding: np.ndarray | None = None  # the post's embedding, from backends that embed in the same pass


@dataclass
class RawEmbedding:
    vector: np.ndarray
    prompt_tokens: int = 0


class Backend(Protocol):
    """One raw call each; raise the library's own exceptions (the client classifies them)."""

    name: ClassVar[str]
    is_local: ClassVar[bool]  # runs in this process on this machine's cores (costs 0; threads from the settings)
    # calls it can serve at once: 1 for one model in this process; None: a remote endpoint, as many as the
    # caller asks for (--concurrency, HYBRID_SCORER_LLM_CONCURRENCY)
    max_concurrency: ClassVar[int | None]
    Options: ClassVar[type[BaseModel]]  # the backend's configuration; its dump is part of identity()
    options: BaseModel

    @classmethod
    def from_spec(cls, model: str, settings: Settings) -> Backend:
        """Build from the part of the spec after `name:` and the settings (timeouts, base URLs)."""
        ...

    @property
    def model(self) -> str:
        """The chat model's name, as shown in provenance and priced in the settings' table."""
        ...

    @property
    def embedding_model(self) -> str:
        """The embedding model's name (priced separately from the chat model)."""
        ...

    @property
    def embeds_in_assessment(self) -> bool:
        """True when `complete` returns the post's embedding from the same forward pass (`embed` unused):
        the embedding then depends on the whole prompt, and the client keys it by the messages."""
        ...

    def identity(self) -> dict[str, Any]:
        """Everything besides the request that changes an assessment (model, weights, decoding)."""
        ...

    def embedding_identity(self) -> dict[str, Any]:
        """Everything besides the text that changes an embedding (model, weights, pooling)."""
        ...

    def request_schema(self, response_model: type[BaseModel]) -> dict[str, Any]:
        """The JSON schema exactly as this backend sends it (providers differ in what they accept)."""
        ...

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply: ...

    def embed(self, text: str) -> RawEmbedding: ...

    def warm(self) -> None:
        """Load the model (local) or check the endpoint answers (remote); raise if it cannot serve."""
        ...


def backend_spec(name: str, model: str) -> str:
    """`name:model`, the resolved spec a model records and serving compares (one place builds it)."""
    return f"{name}:{model}"


def require_model(backend: str, model: str, example: str) -> None:
    """Remote backends have no default model: say how to name one."""
    if not model:
        raise ConfigurationError(f"LLM spec {backend!r} needs a model name, e.g. '{backend}:{example}'")


class RemoteOptions(BaseModel):
    """What configures a hosted backend. Dumped, it is the backend's identity (model, endpoint, decoding);
    the timeout and the embedding model are excluded (the embedding identity names its own model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    temperature: int = 0
    top_logprobs: int = 5
    embedding_model: str | None = Field(default=None, exclude=True)
    timeout_s: float = Field(default=60.0, exclude=True)


class RemoteBackend:
    """What the hosted backends share: their options name a chat model and, optionally, an embedding
    model, and the options' dump (model, endpoint, decoding) is the backend's identity. The SDK client is
    made on first use, so building a backend to compare identities (the promotion gate) needs no API key."""

    options: Any

    def __init__(self, options: Any, client: Any = None) -> None:
        self.options = options
        self._client = client
        self._client_lock = threading.Lock()

    def _make_client(self) -> Any:
        raise NotImplementedError

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    @property
    def model(self) -> str:
        return str(self.options.model)

    @property
    def embedding_model(self) -> str:
        return str(self.options.embedding_model or self.options.model)

    @property
    def embeds_in_assessment(self) -> bool:
        return False  # hosted APIs embed with a separate call (and often a separate model)

    def identity(self) -> dict[str, Any]:
        return dict(self.options.model_dump())
