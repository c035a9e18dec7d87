"""Deterministic fake LLM for tests and dry runs: same post, same answer, no model needed."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.protocol import RawEmbedding, RawReply
from hybrid_scorer.llm.schema import RATING_FIELDS, RATING_SCALE, Topic, question_fields

_KEYWORDS = {
    "star": Topic.ASTRONOMY,
    "planet": Topic.ASTRONOMY,
    "cell": Topic.BIOLOGY,
    "atom": Topic.PHYSICS,
    "light": Topic.PHYSICS,
    "virus": Topic.MEDICINE,
    "brain": Topic.NEUROSCIENCE,
}
EMBEDDING_DIM = 16


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class MockOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "mock-v1"


class MockBackend:
    """`mock`: answers the assessment (and any yes/no questions) from a hash of the post; embeds words
    into 16 buckets."""

    name: ClassVar[str] = "mock"
    is_local: ClassVar[bool] = True
    max_concurrency: ClassVar[int | None] = 1
    Options: ClassVar[type[BaseModel]] = MockOptions
    model: ClassVar[str] = "mock-v1"
    embedding_model: ClassVar[str] = "mock-v1"
    embeds_in_assessment: ClassVar[bool] = False

    def __init__(self, options: MockOptions | None = None) -> None:
        self.options = options or MockOptions()

    @classmethod
    def from_spec(cls, model: str, settings: Settings) -> MockBackend:
        return cls()

    def identity(self) -> dict[str, Any]:
        return self.options.model_dump()

    def embedding_identity(self) -> dict[str, Any]:
        return {"model": self.embedding_model, "dim": EMBEDDING_DIM}

    def request_schema(self, response_model: type[BaseModel]) -> dict[str, Any]:
        return response_model.model_json_schema()

    def warm(self) -> None:
        """Nothing to load."""

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        text = messages[-1]["content"]
        digest = _digest(text)
        lowered = text.lower()
        topic = next((t for word, t in _KEYWORDS.items() if word in lowered), Topic.OTHER)
        ratings = {f: RATING_SCALE[digest[i] % len(RATING_SCALE)] for i, f in enumerate(RATING_FIELDS)}
        expected = {f: ratings[f] + (digest[i + 3] / 255 - 0.5) * 0.8 for i, f in enumerate(RATING_FIELDS)}
        expected = {k: float(np.clip(v, RATING_SCALE[0], RATING_SCALE[-1])) for k, v in expected.items()}
        p_yes = {q: digest[6 + i] / 255 for i, q in enumerate(question_fields(response_model))}
        answers = {q: "yes" if p > 0.5 else "no" for q, p in p_yes.items()}
        reply = json.dumps({"topic": topic.value, **ratings, **answers})
        return RawReply(
            text=reply,
            prompt_tokens=len(text.split()),
            completion_tokens=len(reply.split()),
            expected={**expected, **p_yes},
        )

    def embed(self, text: str) -> RawEmbedding:
        vector = np.zeros(EMBEDDING_DIM, dtype=np.float32)
        for word in text.lower().split():
            vector[_digest(word)[0] % EMBEDDING_DIM] += 1.0
        norm = float(np.linalg.norm(vector))
        return RawEmbedding(vector / norm if norm else vector, prompt_tokens=len(text.split()))


BACKEND = MockBackend
