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

# LightGBM and llama.cpp both run on libgomp's OpenMP threads, on 2 cores here. How long an idle worker
# spins before it sleeps decides their speed: spinning forever (OMP_WAIT_POLICY=ACTIVE, or libgomp's
# default 3 ms) starves another process's pool (a 1-second fit once took > 10 min next to a running
# extraction), and never spinning (PASSIVE) pays a sleeping core's wake-up at every barrier: a LightGBM
# fit 3x slower alone, an extraction 1.3x. A short spin (about 30 us) keeps the speed alone and bounds
# the cost next to another pool (a fit 2.2x slower than PASSIVE there; the extraction beside it as fast):
# `python bench/threads.py`, reports/bench/threads.txt. libgomp reads it when it loads, so it is set
# before anything imports lightgbm or llama_cpp; a policy set in the environment wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "3000")

from hybrid_scorer.version import __version__

if TYPE_CHECKING:
    from hybrid_scorer.serving import Prediction


def predict(post: dict) -> "Prediction":  # serving is imported lazily: it pulls in the model
    """Score one post with the current trained model (see `hybrid_scorer.serving`)."""
    from hybrid_scorer.serving import predict as _predict

    return _predict(post)


__all__ = ["__version__", "predict"]
