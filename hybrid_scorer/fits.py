"""A served model's cross-fit, computed once per input: the out-of-fold predictions of a HybridScorer on
grouped folds and its fit on all posts, kept on disk under a key of everything they depend on.

`make run` asks for the same cross-fits three times: `train --llm none` fits the content model, `ablate`
measures both served models (its served rows are the served models, specs.served_maker), and the final
`train` fits them again, on the same posts with the same code. The key is the estimator's parameters,
the folds, the posts it reads (every column but the LLM's when it reads none, so the content model's key
does not change when LLM columns are attached), the package's source and the numerical libraries'
versions; anything else that changes the fit changes the key. An entry is written to a temporary
directory and renamed into place, so an interrupted run leaves no half entry; the newest KEEP are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import CVResult, cross_validate
from hybrid_scorer.features.llm import PREFIX as LLM_PREFIX
from hybrid_scorer.features.matrix import llm_needs
from hybrid_scorer.model import HybridScorer

log = logging.getLogger(__name__)

KEEP = 8  # entries kept per directory: a development loop's worth; each is a few MB of model text
_LIBRARIES = ("lightgbm", "scikit-learn", "numpy", "scipy", "pandas")


@cache
def _code_digest() -> str:
    """The package's own source and the numerical libraries' versions: a change to either is a new fit."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _LIBRARIES:
        digest.update(f"{name}=={version(name)}\0".encode())
    return digest.hexdigest()


def _column_digest(values: pd.Series) -> bytes:
    if values.dtype != object:
        return pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes()
    digest = hashlib.sha256()  # text, and the embedding column's vectors (None where a post has none)
    for value in values:
        digest.update((value.tobytes() if isinstance(value, np.ndarray) else repr(value).encode()) + b"\0")
    return digest.digest()


def posts_digest(posts: pd.DataFrame, with_llm: bool) -> str:
    """The posts as the fit reads them, in order: every column, or every column but the LLM's."""
    digest = hashlib.sha256()
    for column in sorted(posts.columns):
        if with_llm or not str(column).startswith(LLM_PREFIX):
            digest.update(str(column).encode() + b"\0" + _column_digest(posts[column]))
    return digest.hexdigest()


def fit_key(estimator: HybridScorer, posts: pd.DataFrame, n_folds: int, seed: int) -> str:
    params = json.dumps(estimator.get_params(deep=False), sort_keys=True, default=repr)
    uses_llm = bool(llm_needs(estimator.groups))
    parts = (params, f"{n_folds} folds, seed {seed}", posts_digest(posts, uses_llm), _code_digest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _save(entry: Path, cv: CVResult, scorer: HybridScorer) -> bool:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".staging-"))
    try:
        scorer.save(staging / "model")
        arrays: dict[str, Any] = {"oof_log": cv.oof_log} | {f"head {h}": v for h, v in cv.oof_heads.items()}
        np.savez(staging / "cv.npz", **arrays)
        (staging / "folds.json").write_text(json.dumps(cv.fold_metrics))
        os.replace(staging, entry)
    except OSError:  # another run stored the same fit first (or the disk refused): keep what is there
        shutil.rmtree(staging, ignore_errors=True)
        log.warning("could not store the fit in %s", entry, exc_info=True)
    _prune(entry.parent)
    return entry.is_dir()


def _load(entry: Path, name: str) -> tuple[CVResult, HybridScorer]:
    arrays = np.load(entry / "cv.npz")
    heads = {k.removeprefix("head "): arrays[k] for k in arrays.files if k.startswith("head ")}
    cv = CVResult(name, arrays["oof_log"], json.loads((entry / "folds.json").read_text()), heads)
    return cv, HybridScorer.load(entry / "model")


def _prune(directory: Path) -> None:
    entries = sorted((p for p in directory.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
    for old in entries[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class CrossFit:
    cv: CVResult  # out of fold, on grouped folds
    scorer: HybridScorer  # fitted on all posts
    stored: Path | None  # where it is kept (None: no memory)
    reused: bool  # read from `stored`, not fitted in this call


def cross_fit(
    estimator: HybridScorer,
    posts: pd.DataFrame,
    n_folds: int,
    seed: int,
    progress: bool = False,
    memory: Path | None = None,
    name: str | None = None,
) -> CrossFit:
    """`estimator` (left unfitted) cross-validated on grouped folds and fitted on all posts. With `memory`
    (a directory), a stored cross-fit of the same key is read instead of fitted again."""
    name = name or "+".join(estimator.groups)
    entry = memory / fit_key(estimator, posts, n_folds, seed) if memory is not None else None
    if entry is not None and entry.is_dir():
        entry.touch()  # recently used: kept by _prune
        cv, scorer = _load(entry, name)
        return CrossFit(cv, scorer, entry, reused=True)
    folds = grouped_folds(posts, n_folds, seed)
    cv = cross_validate(name, lambda: clone(estimator), posts, folds, progress)
    scorer = clone(estimator).fit(posts)
    stored = entry if entry is not None and _save(entry, cv, scorer) else None
    return CrossFit(cv, scorer, stored, reused=False)
