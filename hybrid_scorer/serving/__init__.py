"""Serving: `predict(post)` in process (predictor.py) and the HTTP service around it (app.py, assembled from
routers/, dependencies.py, state.py, middleware.py and schemas.py)."""

from hybrid_scorer.serving.predictor import Predictor, default_predictor, predict
from hybrid_scorer.serving.schemas import PostInput, Prediction, PredictionInputError

__all__ = ["PostInput", "Prediction", "PredictionInputError", "Predictor", "default_predictor", "predict"]
