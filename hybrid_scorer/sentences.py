"""What a part of a post is, for both defences against text written at the LLM: the steering check
removes one part at a time (steering.py), and the sentence pooling lets no one part move the embedding
outside the range of the others (llm/backends/embedded.py). One definition, so a "part" is the same
unit in the bound each of them states."""

from __future__ import annotations

import itertools
import re

import numpy as np

MAX_PARTS = 24  # a longer text is cut into this many runs of consecutive sentences: every sentence is in one
_SENTENCE = re.compile(r"[^.!?\n]*[.!?]+[\"')\]]*|[^.!?\n]+")


def parts(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text` (merged into at most MAX_PARTS runs)."""
    spans = [m.span() for m in _SENTENCE.finditer(text) if m.group().strip()]
    if len(spans) <= MAX_PARTS:
        return spans
    bounds = np.linspace(0, len(spans), MAX_PARTS + 1).round().astype(int)
    return [(spans[a][0], spans[b - 1][1]) for a, b in itertools.pairwise(bounds)]
