"""Metrics, the fairness audit and the promotion gates on small hand-made cases."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.spec import Gates, RiskBands
from training.fairness import group_table, nij_fair_accurate
from training.gates import check_gates
from training.metrics import (
    calibration_slope_intercept,
    error_rates,
    expected_calibration_error,
    probability_metrics,
)

BANDS = RiskBands(cut_points=[0.35, 0.55], labels=["low", "moderate", "high"])


def test_ece_weights_each_bin_by_its_share():
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.05, 0.05, 0.05, 0.95, 0.95, 0.95, 1.0])
    # bin 0: mean p 0.05, rate 0.25; bin 9 (1.0 belongs to the last bin): mean p 0.9625, rate 0.75
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.2 + 0.5 * 0.2125)


def test_ece_bins_are_equal_width_from_zero_not_centred_on_tenths():
    """0.19 and 0.21 lie in bins [0.1, 0.2) and [0.2, 0.3): rounding to the nearest tenth would pool them."""
    y, p = np.array([0, 1]), np.array([0.19, 0.21])
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.19 + 0.5 * 0.79)


def test_error_rates_flag_at_the_threshold():
    fpr, fnr = error_rates(np.array([0, 0, 0, 1, 1]), np.array([0.5, 0.49, 0.2, 0.5, 0.1]), 0.5)
    assert fpr == pytest.approx(1 / 3) and fnr == pytest.approx(1 / 2)
    assert error_rates(np.array([1, 1]), np.array([0.9, 0.1]), 0.5) == (None, 0.5)


def test_a_missing_group_cell_belongs_to_no_group():
    y = np.array([0, 0, 1, 0, 0, 1, 0])
    p = np.array([0.6, 0.2, 0.7, 0.6, 0.6, 0.9, 0.1])
    race = pd.Series(["BLACK", "BLACK", "BLACK", "WHITE", "WHITE", "WHITE", None], dtype="str")
    table = group_table(y, p, race, 0.5, min_group_size=1, bands=BANDS)
    assert set(table["groups"]) == {"BLACK", "WHITE"}
    assert table["n_missing"] == 1
    assert table["groups"]["BLACK"]["fpr"] == pytest.approx(0.5)
    assert table["groups"]["WHITE"]["fpr"] == pytest.approx(1.0)
    assert table["fpr_gap"] == pytest.approx(0.5)
    brier = float(np.mean((p - y) ** 2))
    assert nij_fair_accurate(y, p, race, min_group_size=1) == pytest.approx((1 - brier) * (1 - 0.5))


def test_a_group_too_small_for_a_rate_stays_in_the_table_but_out_of_that_gap():
    y = np.array([0] * 40 + [1] * 40 + [0] * 40 + [1] * 40 + [0, 1] * 5)
    p = np.array([0.6] * 10 + [0.2] * 30 + [0.7] * 40 + [0.6] * 20 + [0.2] * 20 + [0.7] * 40 + [0.9] * 10)
    race = pd.Series(["BLACK"] * 80 + ["WHITE"] * 80 + ["OTHER"] * 10, dtype="str")
    table = group_table(y, p, race, 0.5, min_group_size=30, bands=BANDS)
    assert table["groups"]["OTHER"]["fpr"] == 1.0 and table["groups"]["OTHER"]["n_negative"] == 5
    assert table["fpr_gap"] == pytest.approx(0.5 - 0.25)  # BLACK 0.25, WHITE 0.5; OTHER's 1.0 left out
    assert table["left_out"] == {"fpr": ["OTHER"], "fnr": ["OTHER"], "ece": ["OTHER"]}
    assert group_table(y, p, race, 0.5, min_group_size=5, bands=BANDS)["fpr_gap"] == pytest.approx(0.75)
    gates = Gates(fairness_attribute="Race", min_group_size=50)
    small = group_table(y, p, race, 0.5, min_group_size=50, bands=BANDS)
    gate = {g.name: g for g in check_gates(_report(0.73, 0.6, 0.72, 0.01, small), gates)}["fpr_gap"]
    assert not gate.passed
    assert (
        "needs two groups with at least 50 non-recidivists; groups present: BLACK, OTHER, WHITE"
        in gate.detail
    )
    assert "with that many: none" in gate.detail


def test_nij_score_takes_the_size_of_the_fpr_gap_whichever_group_is_higher():
    y = np.array([0, 0, 1, 0, 0, 1])
    p = np.array([0.6, 0.6, 0.7, 0.6, 0.2, 0.9])
    race = pd.Series(["BLACK", "BLACK", "BLACK", "WHITE", "WHITE", "WHITE"], dtype="str")
    # FPR BLACK 1.0, WHITE 0.5: the penalty is |1.0 - 0.5|, not WHITE minus BLACK
    brier = float(np.mean((p - y) ** 2))
    assert nij_fair_accurate(y, p, race, min_group_size=1) == pytest.approx((1 - brier) * (1 - 0.5))


def test_the_nij_score_flags_at_one_half_whatever_the_operating_threshold():
    """The challenge's FPR counts p >= 0.5 as flagged: 0.5 is flagged, 0.47 is not."""
    y = np.array([0, 0, 1, 0, 0, 1])
    p = np.array([0.5, 0.47, 0.9, 0.47, 0.47, 0.9])
    race = pd.Series(["BLACK"] * 3 + ["WHITE"] * 3, dtype="str")
    brier = float(np.mean((p - y) ** 2))
    assert nij_fair_accurate(y, p, race, min_group_size=1) == pytest.approx((1 - brier) * (1 - 0.5))


def test_the_nij_score_needs_enough_non_recidivists_in_both_groups_like_the_fpr_gap():
    """Five non-recidivists each: one flagged person moves a group's FPR by 0.2, and the score with it."""
    y = np.array([0] * 10 + [1, 1])
    p = np.array([0.9] * 5 + [0.1] * 5 + [0.8, 0.3])
    race = pd.Series(["BLACK"] * 5 + ["WHITE"] * 5 + ["BLACK", "WHITE"], dtype="str")
    assert group_table(y, p, race, 0.5, min_group_size=30, bands=BANDS)["fpr_gap"] is None
    assert nij_fair_accurate(y, p, race, min_group_size=30) is None
    brier = float(np.mean((p - y) ** 2))
    assert nij_fair_accurate(y, p, race, min_group_size=5) == pytest.approx((1 - brier) * (1 - 1.0))


def test_gaps_span_the_highest_and_lowest_of_three_groups():
    y = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1])
    p = np.array([0.6, 0.2, 0.7, 0.6, 0.6, 0.9, 0.6, 0.2, 0.2, 0.2, 0.1])
    race = pd.Series(["ASIAN"] * 3 + ["BLACK"] * 3 + ["WHITE"] * 5, dtype="str")
    table = group_table(y, p, race, 0.5, min_group_size=1, bands=BANDS)
    fprs = {group: row["fpr"] for group, row in table["groups"].items()}
    assert fprs == pytest.approx({"ASIAN": 0.5, "BLACK": 1.0, "WHITE": 0.25})
    # the largest gap is between the middle group (by name) and the last, not the first and last
    assert table["fpr_gap"] == pytest.approx(0.75)


def _banded_cohort() -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Groups A and B in every band, C once in "high"; a cut point belongs to the band above it."""
    rows = [
        *[("A", 0.1, 0), ("A", 0.2, 0), ("A", 0.3, 1), ("B", 0.2, 0), ("B", 0.3, 1)],  # low
        *[("A", 0.4, 0), ("A", 0.5, 0), ("A", 0.45, 0), ("A", 0.4, 1), ("B", 0.35, 1), ("B", 0.45, 1)],
        *[("A", 0.9, 1), ("A", 0.55, 1), ("B", 0.6, 1), ("B", 0.7, 0), ("C", 0.8, 0)],  # high
        (None, 0.1, 1),  # in no group
    ]
    groups, p, y = zip(*rows, strict=True)
    return np.array(y), np.array(p), pd.Series(groups, dtype="str")


def test_each_band_shows_per_group_n_mean_predicted_and_observed_rate():
    y, p, groups = _banded_cohort()
    bands = group_table(y, p, groups, 0.5, min_group_size=2, bands=BANDS)["bands"]
    assert list(bands) == ["low", "moderate", "high"]  # the bundle's order, not alphabetical
    assert bands["low"] == {
        "A": {"n": 3, "mean_predicted": pytest.approx(0.2), "observed_rate": pytest.approx(1 / 3)},
        "B": {"n": 2, "mean_predicted": pytest.approx(0.25), "observed_rate": pytest.approx(0.5)},
        "C": {"n": 0, "mean_predicted": None, "observed_rate": None},
    }
    assert bands["moderate"]["A"] == {"n": 4, "mean_predicted": pytest.approx(0.4375), "observed_rate": 0.25}
    assert bands["moderate"]["B"] == {"n": 2, "mean_predicted": pytest.approx(0.4), "observed_rate": 1.0}
    assert bands["high"]["B"] == {"n": 2, "mean_predicted": pytest.approx(0.65), "observed_rate": 0.5}
    # one person in the band: below min_group_size, so no observed rate to be read as evidence
    assert bands["high"]["C"] == {"n": 1, "mean_predicted": pytest.approx(0.8), "observed_rate": None}


def test_the_band_rate_gap_is_the_widest_within_one_band_between_rated_groups():
    y, p, groups = _banded_cohort()
    table = group_table(y, p, groups, 0.5, min_group_size=2, bands=BANDS)
    # low: B 0.5 - A 1/3; moderate: B 1.0 - A 0.25; high: A 1.0 - B 0.5, C's 0.0 unrated
    assert table["band_rate_gap"] == pytest.approx(0.75)
    assert table["band_rate_gap_band"] == "moderate"
    assert table["band_rate_gap_groups"] == ["B", "A"]
    assert table["band_rate_gap_choices"] == 3  # A against B in each of three bands
    rated_alone = group_table(y, p, groups, 0.5, min_group_size=1, bands=BANDS)
    assert rated_alone["band_rate_gap_choices"] == 5  # and C against A and B in "high"
    assert rated_alone["bands"]["high"]["C"]["observed_rate"] == 0.0
    assert rated_alone["band_rate_gap"] == pytest.approx(1.0)
    assert (rated_alone["band_rate_gap_band"], rated_alone["band_rate_gap_groups"]) == ("high", ["A", "C"])


def test_no_band_with_two_rated_groups_leaves_the_band_gap_null():
    y, p, groups = _banded_cohort()
    table = group_table(y, p, groups, 0.5, min_group_size=5, bands=BANDS)
    observed = [cell["observed_rate"] for cells in table["bands"].values() for cell in cells.values()]
    assert observed == [None] * 9  # three bands by three groups, none with five people in a band
    assert table["bands"]["moderate"]["A"]["n"] == 4
    assert table["band_rate_gap"] is None
    assert table["band_rate_gap_band"] is None and table["band_rate_gap_groups"] is None
    assert table["band_rate_gap_choices"] == 0


def test_a_band_where_two_groups_tie_names_both_of_them():
    y, p = np.array([1, 0, 1, 0]), np.array([0.1, 0.2, 0.2, 0.3])
    table = group_table(
        y, p, pd.Series(["A", "A", "B", "B"], dtype="str"), 0.5, min_group_size=2, bands=BANDS
    )
    assert table["band_rate_gap"] == 0.0
    assert (table["band_rate_gap_band"], table["band_rate_gap_groups"]) == ("low", ["A", "B"])


def test_calibration_slope_regresses_the_outcome_on_the_logit_of_p():
    rng = np.random.default_rng(12)
    z = rng.normal(size=40_000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-2 * z))).astype(int)
    slope, intercept = calibration_slope_intercept(y, 1 / (1 + np.exp(-z)))
    assert slope == pytest.approx(2.0, abs=0.15)
    assert intercept == pytest.approx(0.0, abs=0.05)


def test_calibration_slope_and_intercept_are_the_maximum_likelihood_fit():
    """The reported numbers are the unpenalised logistic fit itself, not an optimiser stopped early
    (lbfgs at its default tolerance was 2e-4 off, enough to move a third decimal)."""
    rng = np.random.default_rng(1)
    z = rng.normal(0.3, 1.0, 5000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(0.8 * z + 0.1)))).astype(int)
    design = np.column_stack([np.ones_like(z), z])
    beta = np.zeros(2)
    for _ in range(50):  # Newton-Raphson on the log-likelihood
        mu = 1 / (1 + np.exp(-design @ beta))
        beta += np.linalg.solve(design.T @ (design * (mu * (1 - mu))[:, None]), design.T @ (y - mu))
    slope, intercept = calibration_slope_intercept(y, 1 / (1 + np.exp(-z)))
    assert slope == pytest.approx(beta[1], abs=1e-7)
    assert intercept == pytest.approx(beta[0], abs=1e-7)


def test_probabilities_of_exactly_0_and_1_have_a_finite_calibration_slope():
    """A confident model's sigmoid rounds to 0.0 or 1.0 past a log-odds of about 37: both are clipped
    before the logit, which would otherwise be infinite and stop the evaluation."""
    y = np.array([0, 0, 1, 0, 1, 1] * 10)
    p = np.array([0.0, 0.3, 0.3, 0.7, 0.7, 1.0] * 10)
    metrics = probability_metrics(y, p)
    assert np.isfinite(metrics["calibration_slope"]) and np.isfinite(metrics["calibration_intercept"])
    assert np.isfinite(metrics["log_loss"])


def test_one_outcome_only_leaves_the_rank_metrics_unknown():
    metrics = probability_metrics(np.zeros(20, dtype=int), np.linspace(0.1, 0.9, 20))
    assert metrics["auc"] is None
    assert metrics["calibration_slope"] is None and metrics["calibration_intercept"] is None
    assert metrics["ece"] == pytest.approx(0.5)


def test_one_probability_for_everyone_has_no_calibration_slope():
    metrics = probability_metrics(np.array([0, 1] * 10), np.full(20, 0.4))
    assert metrics["calibration_slope"] is None and metrics["calibration_intercept"] is None
    assert metrics["brier"] == pytest.approx(0.5 * 0.16 + 0.5 * 0.36)


@pytest.mark.parametrize("bad", [np.nan, -0.1, 1.5])
def test_a_missing_or_impossible_probability_is_refused(bad):
    y, p = np.array([0, 1, 0, 1]), np.array([0.2, 0.8, bad, 0.6])
    with pytest.raises(ValueError, match="1 probabilities are missing or outside \\[0, 1\\]"):
        probability_metrics(y, p)
    with pytest.raises(ValueError, match="outside"):
        group_table(y, p, pd.Series(["A", "A", "B", "B"]), 0.5, min_group_size=1, bands=BANDS)


def _report(auc, incumbent, logistic, ece, groups):
    return {
        "risk": {"auc": auc, "ece": ece},
        "baselines": {"incumbent": {"auc": incumbent}, "logistic": {"auc": logistic}},
        "fairness": {"Race": groups} if groups is not None else {},
    }


GATES = Gates(fairness_attribute="Race", max_fpr_gap=0.05, max_ece=0.03, max_auc_below_logistic=0.005)


def test_gates_say_which_failed_and_by_how_much():
    audit = {"groups": {"BLACK": {"fpr": 0.52}, "WHITE": {"fpr": 0.43}}, "fpr_gap": 0.09}
    results = {g.name: g for g in check_gates(_report(0.73, 0.60, 0.74, 0.04, audit), GATES)}
    assert results["auc_over_incumbent"].passed
    assert not results["auc_vs_logistic"].passed
    assert "0.0100 below it, at most 0.0050 below allowed" in results["auc_vs_logistic"].detail
    passing = {g.name: g for g in check_gates(_report(0.75, 0.60, 0.74, 0.01, audit), GATES)}
    assert "0.0100 above it" in passing["auc_vs_logistic"].detail
    assert not results["calibration"].passed and "ECE 0.0400, at most 0.0300" in results["calibration"].detail
    assert not results["fpr_gap"].passed and "gap 0.0900" in results["fpr_gap"].detail


def test_gates_that_cannot_be_computed_fail_and_say_why():
    one_group = {"groups": {"WHITE": {"fpr": 0.4}}, "fpr_gap": None}
    results = {g.name: g for g in check_gates(_report(None, None, None, 0.01, one_group), GATES)}
    assert not results["auc_over_incumbent"].passed and not results["auc_vs_logistic"].passed
    assert "only one outcome" in results["auc_vs_logistic"].detail
    assert not results["fpr_gap"].passed
    assert "groups present: WHITE" in results["fpr_gap"].detail
    # An audit written before min_group_size was recorded counted every group of one or more.
    assert "needs two groups with at least 1 non-recidivists" in results["fpr_gap"].detail
    absent = {g.name: g for g in check_gates(_report(0.7, 0.6, 0.7, 0.01, None), GATES)}
    assert "Race is absent" in absent["fpr_gap"].detail


AT_LIMITS = Gates(
    fairness_attribute="Race",
    min_auc_gain_over_incumbent=0.25,
    max_auc_below_logistic=0.25,
    max_ece=0.25,
    max_fpr_gap=0.25,
)


def test_gates_give_the_bootstrap_interval_of_what_they_check():
    audit = {"groups": {"BLACK": {"fpr": 0.52}, "WHITE": {"fpr": 0.43}}, "fpr_gap": 0.09}
    report = _report(0.73, 0.60, 0.74, 0.04, audit) | {
        "intervals": {
            "level": 0.95,
            "auc_minus_logistic": [-0.021, 0.002],
            "ece": [0.031, 0.052],
            "fpr_gap": [0.06, 0.12],
        }
    }
    results = {g.name: g for g in check_gates(report, GATES)}
    assert (
        "0.0100 below it (95% bootstrap interval -0.0210 to +0.0020), at most"
        in results["auc_vs_logistic"].detail
    )
    assert "gap 0.0900 (95% bootstrap interval 0.0600 to 0.1200) at threshold" in results["fpr_gap"].detail


def test_each_gate_at_its_exact_limit():
    """Numbers exact in binary: a gain equal to the minimum fails, a value equal to a maximum passes."""
    audit = {"groups": {"BLACK": {"fpr": 0.5}, "WHITE": {"fpr": 0.25}}, "fpr_gap": 0.25}
    results = {g.name: g for g in check_gates(_report(0.75, 0.5, 1.0, 0.25, audit), AT_LIMITS)}
    assert not results["auc_over_incumbent"].passed
    assert "gain +0.2500, must exceed +0.2500" in results["auc_over_incumbent"].detail
    assert results["auc_vs_logistic"].passed
    assert results["calibration"].passed
    assert results["fpr_gap"].passed


def test_limits_hold_for_numbers_computed_from_counts():
    """0.735 - 0.730 and 11/20 - 10/20 come out a hair above 0.005 and 0.05 in floating point."""
    gap = 11 / 20 - 10 / 20
    audit = {"groups": {"BLACK": {"fpr": 11 / 20}, "WHITE": {"fpr": 10 / 20}}, "fpr_gap": gap}
    results = {g.name: g for g in check_gates(_report(0.730, 0.6, 0.735, 0.01, audit), GATES)}
    assert 0.735 - 0.730 > 0.005 and gap > 0.05
    assert results["auc_vs_logistic"].passed and results["fpr_gap"].passed
    over = {"groups": {"BLACK": {"fpr": 0.5501}, "WHITE": {"fpr": 0.5}}, "fpr_gap": 0.0501}
    assert not {g.name: g for g in check_gates(_report(0.7299, 0.6, 0.735, 0.01, over), GATES)}[
        "fpr_gap"
    ].passed


def test_the_incumbent_gate_compares_both_scores_on_the_same_rows():
    """The incumbent scores only some people; beating it on everyone else is not beating it."""
    report = _report(0.73, 0.60, 0.72, 0.01, None)
    report["baselines"]["incumbent"] |= {"auc_n": 900, "model_auc": 0.58}
    incumbent = {g.name: g for g in check_gates(report, GATES)}["auc_over_incumbent"]
    assert not incumbent.passed
    assert "risk AUC 0.5800 vs incumbent 0.6000 on the 900 rows with an incumbent score: gain -0.0200" in (
        incumbent.detail
    )


def test_an_unknown_incumbent_auc_is_named_as_such():
    results = {g.name: g for g in check_gates(_report(0.71, None, 0.70, 0.01, None), GATES)}
    incumbent = results["auc_over_incumbent"]
    assert not incumbent.passed
    assert incumbent.detail.startswith("risk AUC 0.7100, incumbent AUC unknown")
    assert "risk AUC unknown" not in incumbent.detail
    assert results["auc_vs_logistic"].passed
    unknown = {g.name: g for g in check_gates(_report(None, 0.6, 0.70, 0.01, None), GATES)}
    unknown_risk = "risk AUC unknown: the evaluation data hold only one outcome"
    assert unknown["auc_over_incumbent"].detail == unknown_risk


def test_an_incumbent_scoring_only_one_outcome_does_not_make_the_risk_auc_unknown():
    """The model's AUC on the incumbent's rows is unknown too, but its AUC on all rows is not."""
    report = _report(0.71, None, 0.70, 0.01, None)
    report["baselines"]["incumbent"] |= {"auc_n": 12, "model_auc": None}
    incumbent = {g.name: g for g in check_gates(report, GATES)}["auc_over_incumbent"]
    assert not incumbent.passed
    assert incumbent.detail == (
        "risk AUC 0.7100, incumbent AUC unknown: "
        "the rows with an incumbent score hold only one outcome (or none)"
    )


def test_band_shares_are_each_groups_people_in_each_band():
    y, p, groups = _banded_cohort()
    shares = group_table(y, p, groups, 0.5, min_group_size=2, bands=BANDS)["band_shares"]
    assert list(shares) == ["low", "moderate", "high"]
    assert shares["low"] == {"A": pytest.approx(3 / 9), "B": pytest.approx(2 / 6), "C": 0.0}
    assert shares["moderate"]["A"] == pytest.approx(4 / 9) and shares["high"]["C"] == 1.0
    for group in ("A", "B", "C"):
        assert sum(shares[band][group] for band in shares) == pytest.approx(1)


def test_probability_metrics_are_the_textbook_ones_on_a_small_case():
    """AUC, Brier and log loss as scikit-learn and the formulas give them, with probabilities near 0 and 1
    that a loose clip would move, and ECE by hand over its equal-width bins."""
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    p = np.array([0.001, 0.12, 0.35, 0.31, 0.64, 0.68, 0.93, 0.999])
    metrics = probability_metrics(y, p)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["auc"] == pytest.approx(13 / 16)  # misordered: 0.35 above 0.31, 0.68 above 0.31 and 0.64
    assert metrics["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert metrics["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    # bins [0, .1) [.1, .2) [.3, .4) [.6, .7) [.9, 1]: one or two people each
    by_hand = (0.001 + 0.12 + abs(0.5 - 0.33) * 2 + abs(0.5 - 0.66) * 2 + abs(1 - 0.9645) * 2) / 8
    assert metrics["ece"] == pytest.approx(by_hand)


def test_each_groups_row_is_computed_on_that_groups_people_alone():
    """n, base rate, AUC, ECE, FPR and FNR per group at the operating threshold (0.3 here, not 0.5),
    each checked by hand or with scikit-learn on the group's own rows."""
    y = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.2, 0.25, 0.45, 0.05, 0.8, 0.32, 0.6, 0.28, 0.9])
    groups = pd.Series(["A"] * 4 + ["B"] * 8, dtype="str")
    table = group_table(y, p, groups, 0.3, min_group_size=1, bands=BANDS)["groups"]
    a, b = slice(0, 4), slice(4, 12)
    assert (table["A"]["n"], table["B"]["n"]) == (4, 8)
    assert (table["A"]["base_rate"], table["B"]["base_rate"]) == (0.5, 0.375)
    assert table["A"]["auc"] == pytest.approx(roc_auc_score(y[a], p[a])) == pytest.approx(0.5)
    assert table["B"]["auc"] == pytest.approx(roc_auc_score(y[b], p[b]))
    # A: bins [.1,.2) [.2,.3) [.3,.4) [.4,.5), one person each
    assert table["A"]["ece"] == pytest.approx((0.1 + 0.8 + 0.65 + 0.4) / 4)
    # A: negatives 0.1, 0.4 (one flagged at >= 0.3); positives 0.35, 0.2 (one missed)
    assert (table["A"]["fpr"], table["A"]["fnr"]) == (0.5, 0.5)
    # B: negatives 0.25, 0.45, 0.05, 0.32, 0.28 (two flagged); positives 0.8, 0.6, 0.9 (none missed)
    assert (table["B"]["fpr"], table["B"]["fnr"]) == (0.4, 0.0)


def test_each_gap_counts_a_groups_size_in_its_own_rates_denominator():
    """C has 40 non-recidivists but 2 recidivists: enough for the FPR gap, too few for the FNR gap."""
    y = np.array([0] * 40 + [1] * 40 + [0] * 40 + [1] * 40 + [0] * 40 + [1] * 2)
    p = np.array([0.6] * 10 + [0.2] * 30 + [0.7] * 40 + [0.6] * 20 + [0.2] * 20 + [0.7] * 30 + [0.2] * 10)
    p = np.concatenate([p, [0.6] * 40 + [0.2] * 2])
    groups = pd.Series(["A"] * 80 + ["B"] * 80 + ["C"] * 42, dtype="str")
    table = group_table(y, p, groups, 0.5, min_group_size=30, bands=BANDS)
    assert table["left_out"] == {"fnr": ["C"]}
    assert table["fpr_gap"] == pytest.approx(1.0 - 0.25)  # C's 40 of 40 against A's 10 of 40
    assert table["fnr_gap"] == pytest.approx(0.25 - 0.0)  # B misses 10 of 40, A none; C's 2 of 2 left out
