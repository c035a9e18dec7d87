"""MLflow logging: params, metrics, tags and artifacts of train / evaluate / ablate runs.

The store is MLflow's own default, `sqlite:///mlflow.db` in the working directory, unless
MLFLOW_TRACKING_URI says otherwise, so `mlflow ui --backend-store-uri sqlite:///mlflow.db` and
`mlflow.search_runs()` read it with no extra settings. Tracking never breaks a run: if MLflow fails the
failure is logged and the command carries on."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
EXPERIMENT = "hybrid-scorer"


def log_run(
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    text_artifacts: dict[str, str] | None = None,
    artifact_paths: list[Path] | None = None,
    tags: dict[str, str] | None = None,
) -> str | None:
    """Log one run; returns its id (None when MLflow is unavailable). Metric keys should be stable,
    queryable names (`ablation.content_llm_embedding.spearman`); human labels go in tags."""
    try:
        import mlflow

        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags(tags or {})
            with tempfile.TemporaryDirectory() as tmp:
                for name, text in (text_artifacts or {}).items():
                    (Path(tmp) / name).write_text(text)
                    mlflow.log_artifact(str(Path(tmp) / name))
            for path in artifact_paths or []:
                if path.is_dir():
                    mlflow.log_artifacts(str(path), artifact_path=path.name)
                elif path.is_file():
                    mlflow.log_artifact(str(path))
            return str(run.info.run_id)
    except Exception as exc:  # tracking is a side channel; the command's own output is what matters
        log.warning("MLflow logging failed (%s); continuing without it", exc)
        return None
