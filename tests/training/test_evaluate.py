"""The evaluation report of a fitted bundle: the fairness audit uses the spec's operating threshold."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from features.needs import need_labels
from features.spec import DatasetSpec
from training.evaluate import evaluate_bundle
from training.fit import outcome

pytestmark = pytest.mark.slow


def test_fairness_is_audited_at_the_operating_threshold(bundle, training_typed):
    data = bundle.spec.model_dump(by_alias=True, exclude_none=True)
    data["gates"]["operating_threshold"] = 0.3
    at_three = replace(bundle, spec=DatasetSpec.model_validate(data))
    rows = training_typed.iloc[3000:]
    report = evaluate_bundle(at_three, rows)
    race = report["fairness"]["Race"]
    assert race["threshold"] == 0.3
    y = outcome(rows, bundle.spec)
    risk = bundle.predict_frame(rows)["risk"].to_numpy()
    assert set(race["groups"]) == {"BLACK", "WHITE"}
    for group, row in race["groups"].items():
        negatives = (rows["Race"] == group).to_numpy() & (y == 0)
        assert row["fpr"] == pytest.approx(np.mean(risk[negatives] >= 0.3))
        assert row["fpr"] > np.mean(risk[negatives] >= 0.5)  # the threshold made a difference


def test_the_incumbent_and_this_model_are_compared_on_the_rows_the_incumbent_scores(bundle, training_typed):
    rows = training_typed.iloc[3000:].copy()
    rows.iloc[::3, rows.columns.get_loc(bundle.spec.incumbent.column)] = None
    report = evaluate_bundle(bundle, rows)
    known = rows[bundle.spec.incumbent.column].notna().to_numpy()
    y = outcome(rows, bundle.spec)
    risk = bundle.predict_frame(rows)["risk"].to_numpy()
    incumbent = report["baselines"]["incumbent"]
    assert incumbent["auc_n"] == known.sum() < len(rows)
    assert incumbent["model_auc"] == pytest.approx(roc_auc_score(y[known], risk[known]))
    assert incumbent["model_auc"] != pytest.approx(report["risk"]["auc"], abs=1e-6)


def test_bands_are_audited_on_the_specs_risk_bands(bundle, training_typed):
    """Band cells use the cut points a served score's band comes from, each band counted once."""
    data = bundle.spec.model_dump(by_alias=True, exclude_none=True)
    data["risk_bands"] = {"cut_points": [0.6], "labels": ["under", "over"]}
    two_bands = replace(bundle, spec=DatasetSpec.model_validate(data))
    rows = training_typed.iloc[3000:]
    race = evaluate_bundle(two_bands, rows)["fairness"]["Race"]
    assert list(race["bands"]) == ["under", "over"]
    y = outcome(rows, bundle.spec)
    risk = bundle.predict_frame(rows)["risk"].to_numpy()
    for group, row in race["groups"].items():
        over = (rows["Race"] == group).to_numpy() & (risk >= 0.6)
        cell = race["bands"]["over"][group]
        assert cell["n"] == over.sum() and cell["n"] + race["bands"]["under"][group]["n"] == row["n"]
        assert cell["mean_predicted"] == pytest.approx(risk[over].mean())
        assert cell["observed_rate"] == pytest.approx(y[over].mean())
    rates = {g: race["bands"][race["band_rate_gap_band"]][g]["observed_rate"] for g in race["groups"]}
    assert race["band_rate_gap"] == pytest.approx(max(rates.values()) - min(rates.values()))


def test_a_need_without_an_auc_is_named_beside_the_macro_auc(bundle, training_typed):
    """Rows where one need is never present: its AUC is unknown and the macro AUC is over the rest."""
    rows = training_typed.iloc[3000:]
    first = bundle.spec.needs[0].name
    rows = rows[(need_labels(rows, bundle.spec)[first] != 1).to_numpy()]
    report = evaluate_bundle(bundle, rows)
    assert report["needs"][first]["auc"] is None
    others = [n["auc"] for name, n in report["needs"].items() if name != first]
    assert None not in others and len(others) == len(bundle.spec.needs) - 1
    assert report["needs_without_auc"] == [first]
    assert report["macro_auc"] == pytest.approx(np.mean(others))


def test_each_needs_auc_prevalence_and_n_are_over_the_rows_where_its_label_is_known(bundle, training_typed):
    rows = training_typed.iloc[3000:].copy()
    rows.iloc[::4, rows.columns.get_loc("Residence_Changes")] = None  # housing unknown for a quarter
    report = evaluate_bundle(bundle, rows)
    labels, scores = need_labels(rows, bundle.spec), bundle.predict_frame(rows)
    assert report["needs"]["housing"]["n"] <= len(rows) - len(rows.iloc[::4])
    for need in bundle.spec.needs:
        known = labels[need.name].notna().to_numpy()
        truth, p = labels[need.name].to_numpy()[known], scores[f"need_{need.name}"].to_numpy()[known]
        row = report["needs"][need.name]
        assert row["n"] == known.sum()
        assert row["prevalence"] == pytest.approx(truth.mean())
        assert row["auc"] == pytest.approx(roc_auc_score(truth, p))
    assert report["macro_auc"] == pytest.approx(np.mean([n["auc"] for n in report["needs"].values()]))


def test_baselines_are_scored_with_the_same_metrics_as_the_model(bundle, training_typed):
    rows = training_typed.iloc[3000:]
    report, scores = evaluate_bundle(bundle, rows), bundle.predict_frame(rows)
    y = outcome(rows, bundle.spec)
    for name in ("logistic", "incumbent"):
        p = scores[f"baseline_{name}"].to_numpy()
        assert report["baselines"][name]["brier"] == pytest.approx(brier_score_loss(y, p))
    assert report["baselines"]["logistic"]["auc"] == pytest.approx(
        roc_auc_score(y, scores["baseline_logistic"])
    )
    incumbent = rows[bundle.spec.incumbent.column].to_numpy(dtype=float)  # higher is riskier
    known = ~np.isnan(incumbent)
    assert report["baselines"]["incumbent"]["auc"] == pytest.approx(roc_auc_score(y[known], incumbent[known]))
