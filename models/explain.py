"""Exact additive explanations: tree SHAP values scaled by the Platt map add up to the score."""

from __future__ import annotations

import threading

import lightgbm as lgb
import numpy as np
import pandas as pd

# LightGBM's pred_contrib is not safe from several threads at once (LightGBM issue 5482).
CONTRIB_LOCK = threading.Lock()
# One OpenMP thread: for the small batches served here, spinning up a pool costs ~8 ms a call.
PREDICT_THREADS = 1


def tree_contributions(booster: lgb.Booster, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-input tree SHAP values and the expected margin, in the booster's raw log-odds."""
    with CONTRIB_LOCK:
        raw = booster.predict(X, pred_contrib=True, num_threads=PREDICT_THREADS)
    return raw[:, :-1], raw[:, -1]
