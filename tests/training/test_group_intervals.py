"""Per-group bootstrap intervals, against a plain bootstrap that resamples each group's rows and
re-scores them with sklearn."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.spec import RiskBands
from training.fairness import group_table
from training.group_intervals import RESAMPLES, SEED, group_intervals
from training.intervals import LEVEL

BANDS = RiskBands(cut_points=[0.35, 0.55, 0.75], labels=["low", "moderate", "high", "very_high"])


def _cohort(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    risk = np.round(np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1), 2)  # ties, 0 and 1
    race = pd.Series(
        rng.choice(["BLACK", "WHITE", "OTHER", None], n, p=[0.52, 0.41, 0.03, 0.04]), dtype="str"
    )
    return y, risk, race


def _plain(y: np.ndarray, risk: np.ndarray, race: pd.Series, groups: list[str]) -> dict[str, dict[str, list]]:
    """Each resample draws every group's own rows with replacement, groups in the table's order."""
    rng = np.random.default_rng(SEED)
    labels = race.to_numpy()
    index = {group: np.flatnonzero(labels == group) for group in groups}
    draws: dict[str, dict[str, list]] = {
        g: {"base_rate": [], "auc": [], "fpr": [], "fnr": []} for g in groups
    }
    for _ in range(RESAMPLES):
        for group in groups:
            rows = index[group][rng.integers(0, len(index[group]), len(index[group]))]
            truth, flagged = y[rows], risk[rows] >= 0.5
            draws[group]["base_rate"].append(truth.mean())
            draws[group]["auc"].append(roc_auc_score(truth, risk[rows]))
            draws[group]["fpr"].append(flagged[truth == 0].mean())
            draws[group]["fnr"].append((~flagged[truth == 1]).mean())
    return draws


def test_group_intervals_equal_a_plain_bootstrap_within_each_group():
    y, risk, race = _cohort(1500)
    table = group_table(y, risk, race, 0.5, 30, BANDS)
    intervals = group_intervals(y, risk, race, 0.5, table)
    groups = list(table["groups"])
    assert groups == ["BLACK", "OTHER", "WHITE"] and table["left_out"]["fpr"] == ["OTHER"]
    plain = _plain(y, risk, race, groups)
    tail = (1 - LEVEL) / 2 * 100
    for group in groups:
        for rate, values in plain[group].items():
            expected = np.percentile(values, [tail, 100 - tail])
            assert intervals["groups"][group][rate] == pytest.approx(expected, abs=1e-12), (group, rate)
    for rate in ("fpr", "fnr"):
        high, low = intervals[f"{rate}_gap_groups"]
        assert {high, low} == {"BLACK", "WHITE"}  # OTHER is left out of the gaps, so of their intervals
        assert table["groups"][high][rate] >= table["groups"][low][rate]
        signed = np.subtract(plain[high][rate], plain[low][rate])
        expected = np.percentile(signed, [tail, 100 - tail])
        assert intervals[f"{rate}_gap"] == pytest.approx(expected, abs=1e-12), rate
    assert intervals["resamples"] == RESAMPLES == 1000 and intervals["level"] == LEVEL
    assert intervals["stratified_by"] == "group" and intervals["seed"] == SEED


def test_intervals_hold_the_estimates_and_a_small_group_gets_a_wide_one():
    y, risk, race = _cohort(3000)
    table = group_table(y, risk, race, 0.5, 30, BANDS)
    intervals = group_intervals(y, risk, race, 0.5, table)
    for group, row in table["groups"].items():
        for rate in ("base_rate", "auc", "fpr", "fnr"):
            low, high = intervals["groups"][group][rate]
            assert low <= row[rate] <= high, (group, rate)
    width = {g: np.diff(intervals["groups"][g]["fpr"])[0] for g in table["groups"]}
    assert width["OTHER"] > 3 * width["BLACK"]  # about a sixteenth of the people: about four times the width
    assert intervals["fpr_gap"][0] <= table["fpr_gap"] <= intervals["fpr_gap"][1]


def test_a_group_with_one_outcome_has_no_auc_or_rate_interval_it_cannot_have():
    y, risk, race = _cohort(800)
    y[(race == "OTHER").to_numpy()] = 1
    table = group_table(y, risk, race, 0.5, 30, BANDS)
    intervals = group_intervals(y, risk, race, 0.5, table)
    assert intervals["groups"]["OTHER"]["auc"] is None and intervals["groups"]["OTHER"]["fpr"] is None
    assert intervals["groups"]["OTHER"]["fnr"] is not None


def test_an_attribute_with_one_group_has_no_gap_interval():
    y, risk, _ = _cohort(400)
    one = pd.Series(["M"] * len(y))
    intervals = group_intervals(y, risk, one, 0.5, group_table(y, risk, one, 0.5, 30, BANDS))
    assert intervals["fpr_gap"] is None and intervals["fpr_gap_groups"] is None
    assert intervals["groups"]["M"]["fpr"] is not None
