"""Train the models `predict()` serves: the hybrid and the content-only fallback, plus the drift reference."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_scorer.ablation import CONTENT_CONFIG, FULL_HYBRID, Config, groups_of
from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import METRICS, cross_validate
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.monitoring import build_reference
from hybrid_scorer.pipeline import Job, with_llm_columns
from hybrid_scorer.tracking import log_run


def _reference_frame(enriched: pd.DataFrame, oof_log: np.ndarray) -> pd.DataFrame:
    """The signals the prediction log records, computed on the training posts."""
    frame = pd.DataFrame(
        {
            "title_chars": enriched["title_clean"].str.len(),
            "body_chars": enriched["body_clean"].str.len(),
            "flair": enriched["flair"].map(normalize_flair),
            "log_prediction": oof_log,
        }
    )
    for column in ("llm_topic", "llm_predicted_interest_expected", "llm_question_clarity_expected"):
        if column in enriched:
            frame[column] = enriched[column].to_numpy()
    return frame


def train_and_save(job: Job, out_dir: Path) -> Iterator[str]:
    """Cross-validate then fit on all posts: `content/` always, `hybrid/` when an LLM is given.
    Yields one human-readable line per saved model."""
    settings, llm, report = job.settings, job.llm, job.report
    client = job.client()
    configs: list[Config] = [CONTENT_CONFIG, *([FULL_HYBRID] if client else [])]
    enriched = with_llm_columns(job.posts, groups_of(configs), client, job.concurrency, job.progress)
    folds = grouped_folds(enriched, settings.n_folds, settings.seed)
    oof_of_served = None
    for config in configs:
        cv = cross_validate(config.name, partial(config.make, settings), enriched, folds, job.progress)
        model = config.make(settings).fit(enriched)
        assert isinstance(model, HybridScorer) and model.manifest_ is not None
        model.manifest_.metrics = {f"cv_{m}": cv.mean(m) for m in METRICS}
        model.manifest_.extra = {"data_sha256": report.sha256, "cv": f"{settings.n_folds}-fold grouped"}
        if any(g.startswith("llm_") for g in config.groups) and client is not None:
            model.manifest_.llm_spec = llm
            model.manifest_.prompt_version = f"{client.prompt.version}@{client.prompt.sha256[:12]}"
        target = out_dir / ("hybrid" if config is FULL_HYBRID else "content")
        model.save(target)
        oof_of_served = cv.oof_log
        log_run(
            f"train:{target.name}",
            params={"groups": config.groups, "llm": llm, "data_sha256": report.sha256},
            metrics=model.manifest_.metrics,
            artifact_paths=[target],
        )
        yield (
            f"saved {target}: CV Spearman {cv.mean('spearman'):.3f}, RMSE log1p {cv.mean('rmse'):.3f}"
            f" ({len(enriched)} posts, {model.manifest_.n_features} features)"
        )
    if not client:
        hybrid_dir = out_dir / "hybrid"
        if hybrid_dir.exists():  # a stale hybrid from an earlier run must not be served with the new content model
            shutil.rmtree(hybrid_dir)
    assert oof_of_served is not None
    reference = build_reference(_reference_frame(enriched, oof_of_served))
    (out_dir / "reference.json").write_text(json.dumps(reference))
    yield f"saved {out_dir / 'reference.json'} (drift reference for `hybrid-scorer monitor`)"
