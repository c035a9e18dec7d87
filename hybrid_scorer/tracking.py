"""MLflow logging: params, metrics and artifacts of train / evaluate / ablate runs.

A local `mlruns/` store by default; MLFLOW_TRACKING_URI is respected. Tracking never breaks a run:
if MLflow is unavailable the failure is logged and the command carries on."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
EXPERIMENT = "hybrid-scorer"


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else a local `mlruns/` file store (MLflow 3 wants an explicit opt-in for it;
    mlflow-skinny has no SQL backend, and a file store needs no server)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def log_run(
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    text_artifacts: dict[str, str] | None = None,
    artifact_paths: list[Path] | None = None,
) -> str | None:
    """Log one run; returns its id (None when MLflow is unavailable)."""
    try:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri())
        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({_metric_key(k): float(v) for k, v in metrics.items()})
            with tempfile.TemporaryDirectory() as tmp:
                for name, text in (text_artifacts or {}).items():
                    (Path(tmp) / name).write_text(text)
                    mlflow.log_artifact(str(Path(tmp) / name))
            for path in artifact_paths or []:
                if path.is_dir():
                    mlflow.log_artifacts(str(path), artifact_path=path.name)
                elif path.is_file():
                    mlflow.log_artifact(str(path))
            return run.info.run_id
    except Exception as exc:  # tracking is a side channel; the command's own output is what matters
        log.warning("MLflow logging failed (%s); continuing without it", exc)
        return None


def _metric_key(name: str) -> str:
    """MLflow accepts letters, digits and _ - . / space in metric names."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)
