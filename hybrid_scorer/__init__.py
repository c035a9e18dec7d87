"""hybrid-scorer: predict r/askscience post scores from content, metadata and LLM features."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hybrid-scorer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"


def predict(post: dict) -> "Prediction":  # noqa: F821 - imported lazily, serving pulls in the model
    """Score one post with the current trained model (see `hybrid_scorer.serving`)."""
    from hybrid_scorer.serving import predict as _predict

    return _predict(post)


__all__ = ["__version__", "predict"]
