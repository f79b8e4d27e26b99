"""Warnings for group error rates resting on too few people, on a cohort with one small group."""

import numpy as np
import pandas as pd

from features.spec import RiskBands
from training.fairness import group_table
from training.group_intervals import group_intervals
from training.group_warnings import TAIL, small_group_warnings

BANDS = RiskBands(cut_points=[0.35, 0.55, 0.75], labels=["low", "moderate", "high", "very_high"])


def _audit(y: np.ndarray, risk: np.ndarray, groups: pd.Series) -> dict:
    table = group_table(y, risk, groups, 0.5, 30, BANDS)
    table["intervals"] = group_intervals(y, risk, groups, 0.5, table)
    return table


def _cohort(n: int) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, n)
    risk = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    groups = pd.Series(rng.choice(["LARGE", "SMALL"], n, p=[0.97, 0.03]))
    return y, risk, groups


def test_a_small_groups_rates_are_warned_of_and_a_large_groups_are_not():
    y, risk, groups = _cohort(8000)
    table = _audit(y, risk, groups)
    warnings = small_group_warnings(table, 0.05)
    assert {(w["group"], w["rate"]) for w in warnings} == {("SMALL", "fpr"), ("SMALL", "fnr")}
    fpr = next(w for w in warnings if w["rate"] == "fpr")
    row, bounds = table["groups"]["SMALL"], table["intervals"]["groups"]["SMALL"]["fpr"]
    assert fpr["count"] == row["n_negative"] and fpr["interval"] == bounds
    assert max(row["fpr"] - bounds[0], bounds[1] - row["fpr"]) > 0.05
    assert fpr["message"] == (
        f"SMALL: FPR {row['fpr']:.3f} rests on {row['n_negative']} people without the outcome; its 95% "
        f"interval {bounds[0]:.3f}-{bounds[1]:.3f} reaches more than 0.05 from it, the largest gap the gate "
        "allows, so a gap of that size to this group could be noise"
    )


def test_the_precision_asked_decides_and_a_left_out_group_says_so():
    y, risk, groups = _cohort(1200)  # SMALL: about 36 people, under 30 on each side
    table = _audit(y, risk, groups)
    assert table["left_out"]["fpr"] == ["SMALL"]
    messages = {(w["group"], w["rate"]): w["message"] for w in small_group_warnings(table, 0.05)}
    assert messages[("SMALL", "fpr")].endswith("(left out of the FPR gap: under 30)")
    assert ("LARGE", "fpr") not in messages  # about 580 people without the outcome: about +-0.04
    assert ("LARGE", "fpr") in {(w["group"], w["rate"]) for w in small_group_warnings(table, 0.03)}
    assert small_group_warnings(table, 0.5) == []


def test_a_group_without_one_outcome_is_warned_to_have_no_rate():
    y, risk, groups = _cohort(2000)
    y[(groups == "SMALL").to_numpy()] = 1
    (warning,) = [w for w in small_group_warnings(_audit(y, risk, groups), 0.05) if w["rate"] == "fpr"]
    assert warning["message"].startswith("SMALL: no people without the outcome, so no FPR")
    assert (warning["count"], warning["interval"]) == (0, None)


def test_a_rate_of_0_or_1_on_few_people_is_warned_of_though_its_bootstrap_interval_is_a_point():
    """Every resample of people all on one side of the threshold gives the same rate: FPR 0.0 on 8 people
    had the interval [0.0, 0.0] and no warning."""
    y, risk, groups = _cohort(600)
    small = (groups == "SMALL").to_numpy()
    risk[small] = 0.3  # nobody flagged: FPR 0, FNR 1
    table = _audit(y, risk, groups)
    row = table["groups"]["SMALL"]
    assert (row["fpr"], row["fnr"], table["intervals"]["groups"]["SMALL"]["fpr"]) == (0.0, 1.0, [0.0, 0.0])
    warnings = {(w["group"], w["rate"]): w for w in small_group_warnings(table, 0.05)}
    fpr, fnr = warnings[("SMALL", "fpr")], warnings[("SMALL", "fnr")]
    reach = 1 - 0.025 ** (1 / row["n_negative"])
    assert fpr["message"] == (
        f"SMALL: FPR 0.000 rests on {row['n_negative']} people without the outcome, all on one side of "
        f"the threshold, so resampling them cannot move it; its exact 95% interval 0.000-{reach:.3f} reaches "
        "more than 0.05 from it, the largest gap the gate allows, so a gap of that size to this group could "
        "be noise (left out of the FPR gap: under 30)"
    )
    assert (fpr["count"], fpr["interval"]) == (row["n_negative"], [0.0, 0.0])
    assert f"FNR 1.000 rests on {row['n_positive']} people with it" in fnr["message"]


def test_how_many_people_a_rate_of_0_rests_on_decides_its_warning():
    """The exact 95% interval of 0 out of n reaches 1 - 0.025^(1/n): past 0.05 up to 71 people, not at 72."""
    for negatives, warned in ((71, True), (72, False)):
        y, risk, groups = _cohort(8000)
        few = np.concatenate([np.zeros(negatives, int), np.ones(40, int)])
        y = np.concatenate([y, few])
        risk = np.concatenate([risk, np.full(len(few), 0.3)])
        groups = pd.concat([groups, pd.Series(["FEW"] * len(few))], ignore_index=True)
        rates = {(w["group"], w["rate"]) for w in small_group_warnings(_audit(y, risk, groups), 0.05)}
        assert (("FEW", "fpr") in rates) is warned, negatives


def test_an_interval_reaching_far_on_one_side_only_is_warned_of_whichever_side():
    """A bootstrap interval of a rate is rarely symmetric: either end reaching past the precision warns."""
    table = {
        "groups": {
            "BELOW": {"fpr": 0.1, "n_negative": 40, "fnr": 0.5, "n_positive": 400},
            "ABOVE": {"fpr": 0.1, "n_negative": 400, "fnr": 0.5, "n_positive": 40},
        },
        "intervals": {
            "groups": {
                "BELOW": {"fpr": [0.0, 0.12], "fnr": [0.47, 0.53]},
                "ABOVE": {"fpr": [0.08, 0.12], "fnr": [0.49, 0.6]},
            }
        },
    }
    warned = {(w["group"], w["rate"]) for w in small_group_warnings(table, 0.05)}
    assert warned == {("BELOW", "fpr"), ("ABOVE", "fnr")}


def test_an_interval_reaching_exactly_the_precision_is_not_warned_of():
    """The gate allows a gap of exactly max_fpr_gap, so a reach of exactly that much is within it, for a
    bootstrap interval and for the exact interval of a rate of 0."""
    n = 40
    reach = 1 - TAIL ** (1 / n)
    table = {
        "groups": {"A": {"fpr": 0.5, "n_negative": 100, "fnr": 0.0, "n_positive": n}},
        "intervals": {"groups": {"A": {"fpr": [0.25, 0.75], "fnr": [0.0, 0.0]}}},
    }
    assert small_group_warnings(table, 0.25) == []
    assert [w["rate"] for w in small_group_warnings(table, reach)] == ["fpr"]
