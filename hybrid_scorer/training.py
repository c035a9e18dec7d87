"""Train the models `predict()` serves: the hybrid and the content-only fallback, plus the drift reference."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_scorer.data import grouped_folds
from hybrid_scorer.evaluation import METRICS, bootstrap_intervals, cross_validate
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.intervals import ConformalIntervals
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.monitoring import SIGNAL_COLUMNS, build_reference
from hybrid_scorer.pipeline import Job
from hybrid_scorer.registry import CHAMPION, REGISTERED_NAME, register
from hybrid_scorer.specs import SERVED, Config, groups_of
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
    for column in SIGNAL_COLUMNS:
        if column in enriched:
            frame[column] = enriched[column].to_numpy()
    return frame


def describe_llm(model: HybridScorer, client: LLMClient, spec: str | None, embedder: str | None) -> None:
    """Record in the manifest which LLM produced the model's columns, so serving can refuse another one."""
    assert model.manifest_ is not None
    model.manifest_.llm_spec = spec
    model.manifest_.llm_model = client.spec
    model.manifest_.prompt_version = f"{client.prompt.version}@{client.prompt.sha256[:12]}"
    model.manifest_.llm_identity = client.backend.identity()
    model.manifest_.embedding_identity = client.embedder.embedding_identity()
    model.manifest_.embedder_spec = embedder
    model.manifest_.embedding_model = client.embedding_spec


def train_and_save(job: Job, out_dir: Path, register_version: bool = True) -> Iterator[str]:
    """Cross-validate then fit on all posts: `content/` always, `hybrid/` when an LLM is given.
    Yields one human-readable line per saved model."""
    settings, report = job.settings, job.report
    client = job.client()
    served: dict[str, Config] = {name: c for name, c in SERVED.items() if client or not c.uses_llm}
    enriched = job.enriched(groups_of(served.values()), client)
    folds = grouped_folds(enriched, settings.n_folds, settings.seed)
    oof_of_served = None
    for name, config in served.items():
        cv = cross_validate(config.name, partial(config.make, settings), enriched, folds, job.progress)
        model = config.make_scorer(settings).fit(enriched)
        assert model.manifest_ is not None
        y_log = np.log1p(enriched["score"].to_numpy(np.float64))
        spearman = bootstrap_intervals(y_log, cv.oof_log, n_boot=1000, seed=settings.seed)[0]["spearman"]
        model.manifest_.metrics = {f"cv_{m}": cv.mean(m) for m in METRICS}
        # the pooled out-of-fold Spearman and its 95% bootstrap interval: what the promotion gate compares
        model.manifest_.metrics |= dict(
            zip(("cv_spearman_oof", "cv_spearman_ci_low", "cv_spearman_ci_high"), spearman, strict=True)
        )
        model.manifest_.extra = {"data_sha256": report.sha256, "cv": f"{settings.n_folds}-fold grouped"}
        # prediction intervals from the same out-of-fold residuals (conformal; see intervals.py)
        model.manifest_.intervals = ConformalIntervals.from_residuals(y_log - cv.oof_log)
        if config.uses_llm and client is not None:
            describe_llm(model, client, job.llm, settings.embedder)
        target = out_dir / name
        model.save(target)
        oof_of_served = cv.oof_log
        log_run(
            f"train:{name}",
            params={"groups": config.groups, "llm": job.llm, "data_sha256": report.sha256},
            metrics=model.manifest_.metrics,
            artifact_paths=[target],
        )
        yield (
            f"saved {target}: CV Spearman {cv.mean('spearman'):.3f}, RMSE log1p {cv.mean('rmse'):.3f}"
            f" ({len(enriched)} posts, {model.manifest_.n_features} features)"
        )
    for name in SERVED.keys() - served.keys():  # a stale hybrid must not be served with a new content model
        shutil.rmtree(out_dir / name, ignore_errors=True)
    assert oof_of_served is not None
    reference = build_reference(_reference_frame(enriched, oof_of_served))
    (out_dir / "reference.json").write_text(json.dumps(reference))
    yield f"saved {out_dir / 'reference.json'} (drift reference for `hybrid-scorer monitor`)"
    if register_version:
        version = register(out_dir, report.sha256)
        yield (
            f"registered as version {version} of '{REGISTERED_NAME}' (MLflow);"
            f" `hybrid-scorer promote --version {version}` makes it the {CHAMPION}"
        )
