"""hybrid-scorer: predict r/askscience post scores from content, metadata and LLM features.

What belongs where. The package is what a user installs and a service runs: data, features, the LLM
layer, the model, training, serving, monitoring and the CLI. What measures, compares or attacks the
product lives outside the served path: experiment modules of the package that `train`, `ablate`,
`evaluate` and `tune` load (evaluation, baselines, ablation, report, plots, tuning; matplotlib is the
`evaluation` extra), and `bench/` and `scripts/` for everything no user command runs (the injection
suite, the parity proof, interval comparisons, benches). `serving` reaches none of them:
tests/test_architecture.py checks it on the imports."""

import os
from typing import TYPE_CHECKING

# LightGBM (OpenMP) and llama.cpp (its own thread pool) share 2 cores here, in one process when serving
# and in parallel processes during development. Spinning OpenMP workers then starve the other pool and a
# LightGBM barrier can stall for minutes (seen: a 1-second fit took > 10 min next to a running
# extraction). Sleeping waits cost little for our model sizes. Must be set before lightgbm loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hybrid_scorer.version import __version__

if TYPE_CHECKING:
    from hybrid_scorer.serving import Prediction


def predict(post: dict) -> "Prediction":  # serving is imported lazily: it pulls in the model
    """Score one post with the current trained model (see `hybrid_scorer.serving`)."""
    from hybrid_scorer.serving import predict as _predict

    return _predict(post)


__all__ = ["__version__", "predict"]
