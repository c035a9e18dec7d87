"""Train the models `predict()` serves: the hybrid and the content-only fallback, plus the drift reference."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_scorer.calibrated import CalibratedScorer
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.llm.identity import LLMIdentity
from hybrid_scorer.monitoring import SIGNAL_COLUMNS, build_reference
from hybrid_scorer.pipeline import Job
from hybrid_scorer.registry import CHAMPION, REGISTERED_NAME, register
from hybrid_scorer.releases import new_release, publish
from hybrid_scorer.specs import INTERVAL_SCHEME, SERVED, Config, groups_of, served_scorer, served_tuning
from hybrid_scorer.tracking import log_run

log = logging.getLogger(__name__)


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


@dataclass
class SavedModel:
    path: Path
    cv_spearman: float
    cv_rmse: float
    n_features: int
    reused: bool = False  # its cross-fit was read from the fit cache (fits.py), not fitted in this run


@dataclass
class Training:
    """What `train_and_save` did: the models it saved, the drift reference, the registry version."""

    n_posts: int
    models: dict[str, SavedModel] = field(default_factory=dict)
    reference: Path | None = None
    published: Path | None = None  # the model path now pointing at this run's release
    version: int | None = None  # the registered model version (None: not registered)

    def summary(self) -> list[str]:
        lines = [
            f"saved {m.path}: CV Spearman {m.cv_spearman:.3f}, RMSE log1p {m.cv_rmse:.3f}"
            f" ({self.n_posts} posts, {m.n_features} features)"
            + (" [its cross-fit read from the fit cache: the same posts, parameters and code]" if m.reused else "")
            for m in self.models.values()
        ]
        if self.reference is not None:
            lines.append(f"saved {self.reference} (drift reference for `hybrid-scorer monitor`)")
        if self.published is not None and self.reference is not None:
            lines.append(f"published: {self.published} -> {self.reference.parent} (serve reloads it on SIGHUP)")
        if self.version is not None:
            lines.append(
                f"registered as version {self.version} of '{REGISTERED_NAME}' (MLflow);"
                f" `hybrid-scorer promote --version {self.version}` makes it the {CHAMPION}"
            )
        return lines


def train_and_save(job: Job, out_dir: Path, register_version: bool = True) -> Training:
    """Cross-validate then fit on all posts: `content/` always, `hybrid/` when an LLM is given; save
    them with the drift reference into a new release, publish it at `out_dir` (one atomic switch:
    releases.py), and register it (unless told not to)."""
    release = new_release(out_dir)
    try:
        done = _train_release(job, release)
    except BaseException:  # a run that did not finish leaves nothing behind (a killed one: pruned later)
        shutil.rmtree(release, ignore_errors=True)
        raise
    publish(out_dir, release)
    done.published = out_dir
    if register_version:
        done.version = register(release, job.report.sha256)
    return done


def _train_release(job: Job, out_dir: Path) -> Training:
    settings, report = job.settings, job.report
    client = job.client()
    served: dict[str, Config] = {name: c for name, c in SERVED.items() if client or not c.uses_llm}
    enriched = job.enriched(groups_of(served.values()), client)
    done = Training(len(enriched))
    oof_of_served = None
    for name, config in served.items():
        tuned = served_tuning(config, report.sha256)
        # what the model is expected to score on new posts, and what the promotion gate compares: with tuned
        # parameters the nested estimate when it was measured on these LLM features (their CV here saw posts
        # the search chose them on), else the CV
        features = client.embedder.embedding_identity() if client and config.uses_llm else None
        nested = tuned.nested if tuned and tuned.features == features else None  # measured on these features
        calibrated = CalibratedScorer(
            served_scorer(config, settings, tuned.chosen if tuned else None),
            scheme=INTERVAL_SCHEME,
            n_folds=settings.n_folds,
            seed=settings.seed,
            expected=nested.spearman if nested else None,
            # which LLM made its columns: serving refuses another one
            llm=LLMIdentity.from_client(client, job.llm, settings.embedder) if config.uses_llm and client else None,
            provenance={
                "release": out_dir.name,  # one training run: content and hybrid carry the same
                "data_sha256": report.sha256,
                "cv": f"{settings.n_folds}-fold grouped",
                "tuning": tuned.model_dump(mode="json", exclude={"nested"})
                | {"nested_spearman": nested.spearman if nested else "not measured on these LLM features"}
                if tuned
                else "LightGBM defaults (no search)",
            },
            progress=job.progress,
            memory=settings.fits_dir,
        ).fit(enriched)
        model, cv = calibrated.scorer_, calibrated.cv_
        assert model.manifest_ is not None
        target = calibrated.save(out_dir / name)
        oof_of_served = cv.oof_log
        log_run(
            f"train:{name}",
            params={"groups": config.groups, "llm": job.llm, "data_sha256": report.sha256},
            metrics=model.manifest_.metrics,
            artifact_paths=[target],
        )
        done.models[name] = SavedModel(
            target, cv.mean("spearman"), cv.mean("rmse"), model.manifest_.n_features, calibrated.reused_
        )
    assert oof_of_served is not None
    done.reference = out_dir / "reference.json"
    done.reference.write_text(json.dumps(build_reference(_reference_frame(enriched, oof_of_served))))
    return done
