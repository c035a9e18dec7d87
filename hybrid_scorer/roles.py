"""The served models' roles, one name each: the hybrid answers when the LLM does, the content model
otherwise (the fallback). A trained model directory holds one subdirectory per role."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    HYBRID = "hybrid"
    CONTENT = "content"


SERVING_ORDER = (Role.HYBRID, Role.CONTENT)  # which model a caller gets first, when it is there
