"""Deterministic fake LLM for tests and dry runs: same post, same answer, no model needed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from hybrid_scorer.llm.client import RawEmbedding, RawReply
from hybrid_scorer.llm.schema import RATING_FIELDS, Topic

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


class MockBackend:
    name = "mock"
    model = "mock-v1"
    is_local = True

    @property
    def params(self) -> dict[str, Any]:
        return {}

    @property
    def embedding_params(self) -> dict[str, Any]:
        return {"dim": EMBEDDING_DIM}

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> RawReply:
        text = messages[-1]["content"]
        digest = _digest(text)
        lowered = text.lower()
        topic = next((t for word, t in _KEYWORDS.items() if word in lowered), Topic.OTHER)
        ratings = {f: 1 + digest[i] % 5 for i, f in enumerate(RATING_FIELDS)}
        expected = {f: ratings[f] + (digest[i + 3] / 255 - 0.5) * 0.8 for i, f in enumerate(RATING_FIELDS)}
        reply = json.dumps({"topic": topic.value, **ratings})
        return RawReply(
            text=reply,
            prompt_tokens=len(text.split()),
            completion_tokens=len(reply.split()),
            expected={k: float(np.clip(v, 1, 5)) for k, v in expected.items()},
        )

    def embed(self, text: str) -> RawEmbedding:
        vector = np.zeros(EMBEDDING_DIM, dtype=np.float32)
        for word in text.lower().split():
            vector[_digest(word)[0] % EMBEDDING_DIM] += 1.0
        norm = float(np.linalg.norm(vector))
        return RawEmbedding(vector / norm if norm else vector, prompt_tokens=len(text.split()))
