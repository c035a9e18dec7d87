"""The served models as an MLflow pyfunc, logged as code (MLflow's "models from code"), so loading it
unpickles nothing: `load_context` reads the LightGBM text and JSON artifacts with the project's own
loader. MLflow runs this file when it loads the model; it is not imported by the package.

    model = mlflow.pyfunc.load_model("models:/hybrid-scorer@champion")
    model.predict(pd.DataFrame([{"title": "Why is the sky blue?", "body": ""}]))"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class HybridScorerModel(PythonModel):
    """A DataFrame of posts (title, body, optional flair and created_utc) in; score, log_score, the
    model that scored each post, fallback and per-row input errors out."""

    def load_context(self, context: Any) -> None:
        from hybrid_scorer.serving.predictor import Predictor

        self.predictor = Predictor(model_dir=Path(context.artifacts["models"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        posts = [
            {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v)) and v is not None}
            for row in model_input.to_dict(orient="records")
        ]
        rows = []
        for outcome in self.predictor.predict_batch(posts):
            if isinstance(outcome, Exception):
                rows.append({"score": math.nan, "log_score": math.nan, "error": str(outcome)})
            else:
                rows.append(
                    {**outcome.model_dump(include={"score", "log_score", "model_version", "fallback"}), "error": None}
                )
        return pd.DataFrame(rows)


mlflow.models.set_model(HybridScorerModel())
