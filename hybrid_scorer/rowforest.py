"""One row through a LightGBM model at the trees' own cost: the C API's fast single-row prediction.

`Booster.predict` parses its parameters, builds a predictor and checks the array on every call: for one
row of the served models that is more than the walk through their trees (`python bench/predict.py`).
LightGBM's C API has a call made for this, `LGBM_BoosterPredictForMatSingleRowFast`: the predictor is set
up once (`...FastInit`) and each call only walks the trees. Its setup holds a lock of its own, so threads
may share one (LightGBM serializes them); ctypes releases the GIL during the call.

The Python package does not wrap it, so this module calls LightGBM's library through the package's own
handle to it (`lightgbm.basic._LIB`); `tests/test_row_path.py` checks every answer against
`Booster.predict`, so a LightGBM release that changed the call would fail there, not in serving."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call

_PREDICT_RAW_SCORE = 1  # C_API_PREDICT_RAW_SCORE
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_ALL_ITERATIONS = -1


class RowForest:
    """`forest(row)`: the raw score of each of the booster's outputs for one feature row (float64, one
    value per feature, NaN where missing), exactly what `booster.predict(row[None], raw_score=True)` gives."""

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster  # the fast predictor reads the booster's trees: kept alive with it
        self.n_features = booster.num_feature()
        self.n_outputs = booster.num_model_per_iteration()
        config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_RAW_SCORE),
                ctypes.c_int(0),
                ctypes.c_int(_ALL_ITERATIONS),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(config),
            )
        )
        self._config = config

    def __call__(self, row: np.ndarray) -> np.ndarray:
        row = np.ascontiguousarray(row, dtype=np.float64)
        if row.shape != (self.n_features,):
            raise ValueError(f"a row of {self.n_features} features expected, got shape {row.shape}")
        out = np.empty(self.n_outputs)
        length = ctypes.c_int64()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._config,
                ctypes.c_void_p(row.ctypes.data),
                ctypes.byref(length),
                ctypes.c_void_p(out.ctypes.data),
            )
        )
        return out

    def rows(self, matrix: np.ndarray) -> np.ndarray:
        """Each row of `matrix` in turn (n_rows x n_outputs): for the few rows of one post's variants,
        cheaper than one batch call's set-up."""
        return np.array([self(line) for line in matrix]).reshape(len(matrix), self.n_outputs)

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value is not None:
            _LIB.LGBM_FastConfigFree(config)

    def __reduce__(self) -> tuple[Callable[..., RowForest], tuple[Any, ...]]:
        """Pickled as its booster (the fast predictor is a pointer, set up again on loading)."""
        return RowForest, (self.booster,)
