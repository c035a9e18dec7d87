"""TF-IDF of title and body, stored as vocabulary + idf in JSON so loading never unpickles."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from hybrid_scorer.features.base import safe_name

_FIELDS = {"title": "title_clean", "body": "body_clean"}
_VECTORIZER_PARAMS: dict[str, Any] = {"lowercase": True, "ngram_range": (1, 2), "min_df": 3, "sublinear_tf": True}


class _FieldTfidf:
    """TF-IDF of one text column; transform = counts on the saved vocabulary, sublinear tf, idf, l2."""

    def __init__(self, max_features: int) -> None:
        self.max_features = max_features
        self.vocabulary: dict[str, int] = {}
        self.idf: np.ndarray = np.zeros(0)
        self._counter_cache: CountVectorizer | None = None
        self._idf_diagonal: sparse.dia_matrix | None = None

    def fit(self, texts: pd.Series) -> None:
        vectorizer = TfidfVectorizer(max_features=self.max_features, **_VECTORIZER_PARAMS)
        vectorizer.fit(texts)
        self.vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        self.idf = vectorizer.idf_.astype(np.float64)
        self._counter_cache = None

    def transform(self, texts: pd.Series) -> sparse.csr_matrix:
        if not self.vocabulary:
            return sparse.csr_matrix((len(texts), 0))
        counts = self._counter().transform(texts).astype(np.float64)
        counts.data = 1.0 + np.log(counts.data)
        return normalize(counts @ self._idf_diagonal, norm="l2").tocsr()

    def _counter(self) -> CountVectorizer:
        """Built once per vocabulary: validating a 2,000-term vocabulary costs more than scoring one post."""
        if self._counter_cache is None:
            self._counter_cache = CountVectorizer(
                vocabulary=self.vocabulary, lowercase=True, ngram_range=_VECTORIZER_PARAMS["ngram_range"]
            ).fit([""])
            self._idf_diagonal = sparse.diags(self.idf)
        return self._counter_cache

    @property
    def terms(self) -> list[str]:
        ordered = [""] * len(self.vocabulary)
        for term, i in self.vocabulary.items():
            ordered[i] = term
        return ordered


class TfidfFeatures:
    """Word 1-2 grams of the title and the body, each its own vocabulary (titles carry more signal)."""

    name: ClassVar[str] = "tfidf"

    def __init__(self, max_features: int = 2000) -> None:
        self.max_features = max_features
        self._fields = {f: _FieldTfidf(max_features) for f in _FIELDS}

    def fit(self, posts: pd.DataFrame) -> Self:
        for field, column in _FIELDS.items():
            self._fields[field].fit(posts[column])
        return self

    def transform(self, posts: pd.DataFrame) -> sparse.csr_matrix:
        blocks = [self._fields[f].transform(posts[c]) for f, c in _FIELDS.items()]
        return sparse.hstack(blocks, format="csr")

    @property
    def feature_names(self) -> list[str]:
        return [f"tfidf_{f}_{safe_name(t) or 'term'}" for f, vec in self._fields.items() for t in vec.terms]

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_features": self.max_features,
            "fields": {f: {"vocabulary": v.vocabulary, "idf": v.idf.tolist()} for f, v in self._fields.items()},
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Self:
        group = cls(max_features=state["max_features"])
        for field, saved in state["fields"].items():
            group._fields[field].vocabulary = {k: int(i) for k, i in saved["vocabulary"].items()}
            group._fields[field].idf = np.asarray(saved["idf"], dtype=np.float64)
            group._fields[field]._counter_cache = None
        return group
