"""TF-IDF of title and body, stored as vocabulary + idf in JSON so loading never unpickles."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain, pairwise
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from hybrid_scorer.features.base import GroupBase, PostRow, require_fitted, safe_name

_FIELDS = {"title": "title_clean", "body": "body_clean"}  # field -> column of the posts and attribute of a PostRow
_VECTORIZER_PARAMS: dict[str, Any] = {"lowercase": True, "ngram_range": (1, 2), "min_df": 3, "sublinear_tf": True}


class FieldTfidf:
    """TF-IDF of one text column; transform = counts on the saved vocabulary, sublinear tf, idf, l2.

    The counter over the vocabulary is built once when the state is set (in `fit` or `from_state`):
    validating a 2,000-term vocabulary costs more than scoring one post, and building it lazily on the
    first request would race between concurrent requests."""

    def __init__(self, max_features: int) -> None:
        self.max_features = max_features

    def fit(self, texts: pd.Series) -> Self:
        vectorizer = TfidfVectorizer(max_features=self.max_features, **_VECTORIZER_PARAMS).fit(texts)
        return self._set_state({term: int(i) for term, i in vectorizer.vocabulary_.items()}, vectorizer.idf_)

    def from_state(self, vocabulary: dict[str, int], idf: list[float]) -> Self:
        return self._set_state({k: int(i) for k, i in vocabulary.items()}, np.asarray(idf, dtype=np.float64))

    def _set_state(self, vocabulary: dict[str, int], idf: np.ndarray) -> Self:
        self.vocabulary_ = vocabulary
        self.idf_ = idf.astype(np.float64)
        self.counter_ = CountVectorizer(
            vocabulary=vocabulary or None, lowercase=True, ngram_range=_VECTORIZER_PARAMS["ngram_range"]
        )
        if vocabulary:
            self.counter_.fit([""])
        self.token_ = re.compile(self.counter_.token_pattern)
        self.idf_diagonal_ = sparse.diags(self.idf_)
        return self

    def transform(self, texts: pd.Series) -> sparse.csr_matrix:
        require_fitted(self, "vocabulary_")
        if not self.vocabulary_:
            return sparse.csr_matrix((len(texts), 0))
        counts = self.counter_.transform(texts).astype(np.float64)
        counts.data = 1.0 + np.log(counts.data)
        return normalize(counts @ self.idf_diagonal_, norm="l2").tocsr()

    def transform_text(self, text: str) -> np.ndarray:
        """One text's row, dense: the batch path's arithmetic on the same terms, vocabulary and idf. The
        terms are made as the counter's analyzer makes them (lowercased, its token pattern, each bigram two
        tokens joined by a space; `tests/test_features_model.py` holds them equal), without its calls."""
        require_fitted(self, "vocabulary_")
        tokens = self.token_.findall(text.lower())
        vocabulary = self.vocabulary_
        grams = chain(tokens, map(" ".join, pairwise(tokens)))
        found = [vocabulary[gram] for gram in grams if gram in vocabulary]
        out = np.zeros(len(vocabulary))
        if found:
            indices, tf = np.unique(np.array(found), return_counts=True)  # in column order, as the batch path
            values = (1.0 + np.log(tf)) * self.idf_[indices]
            out[indices] = values / np.sqrt(np.dot(values, values))
        return out

    @property
    def terms(self) -> list[str]:
        ordered = [""] * len(self.vocabulary_)
        for term, i in self.vocabulary_.items():
            ordered[i] = term
        return ordered


class TfidfFeatures(GroupBase):
    """Word 1-2 grams of the title and the body, each its own vocabulary (titles carry more signal)."""

    name: ClassVar[str] = "tfidf"
    reads_as: ClassVar[str] = "the words used"

    def __init__(self, max_features: int = 2000) -> None:
        self.max_features = max_features

    def fit(self, posts: pd.DataFrame, y: np.ndarray | None = None) -> Self:
        self.fields_ = {f: FieldTfidf(self.max_features).fit(posts[c]) for f, c in _FIELDS.items()}
        return self

    def transform(self, posts: pd.DataFrame) -> sparse.csr_matrix:
        require_fitted(self, "fields_")
        return sparse.hstack([self.fields_[f].transform(posts[c]) for f, c in _FIELDS.items()], format="csr")

    def transform_row(self, row: PostRow) -> np.ndarray:
        require_fitted(self, "fields_")
        return np.concatenate([self.fields_[f].transform_text(getattr(row, c)) for f, c in _FIELDS.items()])

    def transform_rows(self, rows: Sequence[PostRow]) -> np.ndarray:
        """Each distinct text of a field once: variants of one post that leave out a body sentence share
        its title, and those that leave out a title sentence share its body."""
        require_fitted(self, "fields_")
        blocks = []
        for f, c in _FIELDS.items():
            texts = [getattr(row, c) for row in rows]
            distinct = {text: self.fields_[f].transform_text(text) for text in dict.fromkeys(texts)}
            blocks.append(np.asarray([distinct[text] for text in texts]).reshape(len(rows), -1))
        return np.hstack(blocks)

    @property
    def width(self) -> int:
        require_fitted(self, "fields_")
        return sum(len(v.vocabulary_) for v in self.fields_.values())

    @property
    def feature_names(self) -> list[str]:
        require_fitted(self, "fields_")
        return [f"tfidf_{f}_{safe_name(t) or 'term'}" for f, vec in self.fields_.items() for t in vec.terms]

    def to_dict(self) -> dict[str, Any]:
        require_fitted(self, "fields_")
        return {
            "max_features": self.max_features,
            "fields": {f: {"vocabulary": v.vocabulary_, "idf": v.idf_.tolist()} for f, v in self.fields_.items()},
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        group = cls(max_features=state["max_features"])
        group.fields_ = {
            f: FieldTfidf(group.max_features).from_state(saved["vocabulary"], saved["idf"])
            for f, saved in state["fields"].items()
        }
        return group
