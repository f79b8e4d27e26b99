"""Tree contributions: LightGBM's pred_contrib runs under the lock, split into inputs and base."""

import numpy as np

from models.explain import CONTRIB_LOCK, tree_contributions


class _LockWatchingBooster:
    """Answers pred_contrib like LightGBM (one column per input, then the expected margin)
    and records whether CONTRIB_LOCK was held during each call."""

    def __init__(self) -> None:
        self.lock_held: list[bool] = []

    def predict(self, X: np.ndarray, pred_contrib: bool = False, num_threads: int = 0) -> np.ndarray:
        assert pred_contrib
        self.lock_held.append(CONTRIB_LOCK.locked())
        return np.column_stack([X, np.full(len(X), 0.25)])


def test_pred_contrib_runs_under_the_lock():
    booster = _LockWatchingBooster()
    X = np.array([[1.0, -2.0], [0.5, 3.0]])
    phi, expected = tree_contributions(booster, X)
    assert booster.lock_held == [True]
    assert not CONTRIB_LOCK.locked()
    np.testing.assert_array_equal(phi, X)
    np.testing.assert_array_equal(expected, [0.25, 0.25])
