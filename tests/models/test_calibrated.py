"""The Platt map of CalibratedBooster: calibrated log-odds are calibrated on rows it never saw."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.calibrated import CalibratedBooster, platt_map


def _cohort(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    true_log_odds = 1.5 * X["a"] - X["b"]
    return X, (rng.random(n) < 1 / (1 + np.exp(-true_log_odds))).astype(int).to_numpy()


def test_platt_map_stretches_an_undertrained_margin_to_calibration():
    """Thirty slow rounds leave the raw margin far too flat: only the fitted slope calibrates it."""
    X, y = _cohort(4000, seed=1)
    model = CalibratedBooster({"learning_rate": 0.01}, max_rounds=30, random_state=0).fit(X, y)
    held_out, truth = _cohort(20_000, seed=2)
    log_odds = model.decision_function(held_out).reshape(-1, 1)
    recalibration = LogisticRegression(C=1e6, max_iter=1000).fit(log_odds, truth)
    assert 0.85 <= recalibration.coef_[0, 0] <= 1.15
    assert recalibration.intercept_[0] == pytest.approx(0.0, abs=0.15)


def test_platt_map_is_the_maximum_likelihood_fit():
    """At the maximum the score equations hold: residuals sum to 0, alone and weighted by the margin.
    lbfgs at its default tolerance stopped about 1e-5 short in probability on the NIJ file."""
    rng = np.random.default_rng(3)
    margin = rng.normal(0.2, 0.8, size=14_499)
    y = (rng.random(margin.size) < 1 / (1 + np.exp(-(0.99 * margin + 0.01)))).astype(int)
    slope, intercept = platt_map(margin, y)
    residual = y - 1 / (1 + np.exp(-(slope * margin + intercept)))
    assert abs(residual.mean()) < 1e-9
    assert abs((residual * margin).mean()) < 1e-9


def test_the_platt_map_is_fitted_on_margins_of_rows_each_fold_never_saw():
    """On pure noise, deep trees separate their own training rows; fitted on those in-sample margins the
    map would spread probabilities that out-of-fold margins show to mean nothing."""
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(2000, 5)), columns=list("abcde"))
    y = (rng.random(2000) < 0.3).astype(int)
    overfit = {"num_leaves": 64, "min_child_samples": 2, "learning_rate": 0.3, "feature_fraction": 1.0}
    model = CalibratedBooster(overfit, max_rounds=200, random_state=0).fit(X, y)
    held_out = pd.DataFrame(rng.normal(size=(5000, 5)), columns=list("abcde"))
    p = model.predict_proba(held_out)[:, 1]
    assert abs(model.slope_) < 0.3
    assert np.ptp(p) < 0.2


def test_input_names_lightgbm_refuses_are_fitted_explained_and_kept():
    """An export's headers ("Age, years", "Score [0-10]") are input names; LightGBM stopped with a fatal
    error on any of , : [ ] { } " in a feature name, so training on such a layout crashed."""
    X, y = _cohort(600, seed=5)
    X.columns = ["Age, years", 'Score [0-10]: "LSI" {v2}', "c"]
    model = CalibratedBooster(max_rounds=50, random_state=0).fit(X, y)
    assert list(model.feature_names_in_) == list(X.columns)
    base, phi = model.explain(X[["c", "Age, years", 'Score [0-10]: "LSI" {v2}']])
    np.testing.assert_allclose(base + phi.sum(axis=1), model.decision_function(X), atol=1e-9)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0] * 40, r"^CalibratedBooster needs labels 0 and 1, each at least once; got \[0\]$"),
        (
            [0, 1, 2, 3] * 10,
            r"^CalibratedBooster needs labels 0 and 1, each at least once; got \[0, 1, 2, 3\]$",
        ),
        ([0] * 36 + [1] * 4, r"^5-fold cross-validation needs at least 5 records of each outcome$"),
    ],
)
def test_labels_it_cannot_cross_validate_are_refused_before_fitting(labels, message):
    """Said in its own words rather than by LightGBM, StratifiedKFold or the Platt fit at the end."""
    X, _ = _cohort(len(labels), seed=6)
    with pytest.raises(ValueError, match=message):
        CalibratedBooster(max_rounds=5).fit(X, np.array(labels))


def test_predict_is_the_calibrated_probability_at_one_half():
    X, y = _cohort(600, seed=7)
    model = CalibratedBooster(max_rounds=50, random_state=0).fit(X, y)
    p = model.predict_proba(X)[:, 1]
    assert 0 < (p >= 0.5).mean() < 1
    np.testing.assert_array_equal(model.predict(X), (p >= 0.5).astype(int))


def test_predict_proba_is_the_logistic_of_the_calibrated_log_odds_in_both_columns():
    """sklearn reads column 0 as P(0) and classes_ to name the columns: both must be the outcome's."""
    X, y = _cohort(600, seed=8)
    model = CalibratedBooster(max_rounds=50, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-model.decision_function(X))), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert ((proba > 0) & (proba < 1)).all()
    assert model.classes_.tolist() == [0, 1]
    assert model.n_features_in_ == 3


def test_early_stopping_picks_fewer_rounds_than_the_most_allowed_on_noise():
    """On pure noise the held-out loss stops improving within a few rounds: the rest would only overfit."""
    rng = np.random.default_rng(9)
    X = pd.DataFrame(rng.normal(size=(1000, 3)), columns=list("abc"))
    y = (rng.random(1000) < 0.3).astype(int)
    model = CalibratedBooster({"learning_rate": 0.3}, max_rounds=300, random_state=0).fit(X, y)
    assert model.n_rounds_ < 150
