"""Length and structure of the title and body: what a reader sees before reading a word."""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
import pandas as pd

from hybrid_scorer.features.base import PostRow, StatelessGroup

_LINK = re.compile(r"\]\((?:https?://|www\.)|(?<!\()(?:https?://|www\.)")  # a markdown link counts once
_QUESTION_WORD = re.compile(r"^(why|how|what|when|where|who|which|is|are|can|could|do|does|would|will|if)\b", re.I)


def _links(raw: str) -> int:
    """How many links the raw body has; one without "http" or "www." has none (a substring search in C
    spares most bodies the pattern's scan)."""
    return len(_LINK.findall(raw)) if "http" in raw or "www." in raw else 0


def _digits(text: str) -> int:
    """How many characters of `text` are digits (str.isdigit); an ASCII text counts its ten digits in C."""
    return sum(map(text.count, "0123456789")) if text.isascii() else sum(map(str.isdigit, text))


def _stats(title: str, body: str, body_raw: str) -> list[float]:
    # counting with map over C-level str methods: the row path runs this once per request
    letters = "".join(filter(str.isalpha, title))
    return [
        len(title),
        len(title.split()),
        len(body),
        len(body.split()),
        title.count("?"),
        body.count("?"),
        _links(body_raw),
        _digits(title) + _digits(body),
        (sum(map(str.isupper, letters)) / len(letters)) if letters else 0.0,
        float(bool(body)),
        float(body_raw.count("\n\n") + 1 if body else 0),
        float(bool(_QUESTION_WORD.match(title))),
        float(title.rstrip().endswith("?")),
    ]


class TextStatsFeatures(StatelessGroup):
    """Counts on the cleaned text; links and paragraphs on the raw body, where they still are. Edits are
    not counted: they are cut from the body (data.py), being written after the post went up."""

    name: ClassVar[str] = "text_stats"
    reads_as: ClassVar[str] = "the post's length and shape"
    columns: ClassVar[list[str]] = [
        "title_chars",
        "title_words",
        "body_chars",
        "body_words",
        "title_question_marks",
        "body_question_marks",
        "body_links",
        "digits",
        "title_capitals_ratio",
        "has_body",
        "body_paragraphs",
        "title_starts_with_question_word",
        "title_ends_with_question_mark",
    ]

    def transform(self, posts: pd.DataFrame) -> np.ndarray:
        rows = [
            _stats(t, b, r) for t, b, r in zip(posts["title_clean"], posts["body_clean"], posts["body"], strict=True)
        ]
        return np.asarray(rows, dtype=np.float64).reshape(len(posts), len(self.columns))

    def transform_row(self, row: PostRow) -> np.ndarray:
        return np.asarray(_stats(row.title_clean, row.body_clean, row.body), dtype=np.float64)

    @property
    def feature_names(self) -> list[str]:
        return list(self.columns)
