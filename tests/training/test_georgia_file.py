"""Train, evaluate and promote on the real Georgia file, as a data scientist would (skipped without it).

The floors sit below every measurement over five splits (README): they catch regressions, they are
not tuned to one split."""

import json

import pytest
from mlflow import MlflowClient

from tests.training.commands import cli

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

ROWS = 19_333


@pytest.fixture(scope="module")
def georgia(store, real_data_path) -> dict:
    args = ["--spec", "georgia_parole", "--data", str(real_data_path), "--name", "georgia", "--seed", "0"]
    result = cli("train", *args, uri=store)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_risk_model_beats_its_baselines_and_is_calibrated(georgia):
    metrics = georgia["metrics"]
    assert metrics["test_risk_auc"] >= 0.72
    assert metrics["test_risk_auc"] > metrics["test_incumbent_auc"] + 0.1
    assert metrics["test_risk_auc"] >= metrics["test_logistic_auc"] - 0.005
    assert metrics["test_risk_brier"] <= metrics["test_logistic_brier"] + 0.001
    assert metrics["test_risk_ece"] <= 0.03
    assert 0.85 <= metrics["test_risk_calibration_slope"] <= 1.15


def test_every_need_is_predicted_better_than_chance(georgia):
    metrics = georgia["metrics"]
    needs = {k: v for k, v in metrics.items() if k.startswith("test_need_")}
    assert len(needs) == 6
    assert min(needs.values()) > 0.6
    assert metrics["test_needs_macro_auc"] >= 0.68


def test_evaluate_reports_both_race_groups_and_the_nij_score(georgia, store, real_data_path):
    result = cli("evaluate", "--model", "models:/georgia@candidate", "--data", str(real_data_path), uri=store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == ROWS
    race = report["fairness"]["Race"]
    assert set(race["groups"]) == {"BLACK", "WHITE"}
    assert sum(group["n"] for group in race["groups"].values()) == ROWS
    fpr = {name: group["fpr"] for name, group in race["groups"].items()}
    assert race["fpr_gap"] == pytest.approx(abs(fpr["BLACK"] - fpr["WHITE"]))
    expected = (1 - report["risk"]["brier"]) * (1 - race["fpr_gap"])
    assert report["nij_fair_accurate"] == pytest.approx(expected)


def test_promotion_is_refused_on_the_race_fpr_gap_until_forced(georgia, store):
    version = georgia["model_version"]
    refused = cli("promote", "--name", "georgia", "--version", version, uri=store)
    assert refused.returncode == 2
    assert f"refused to promote georgia version {version}: 1 gate(s) failed" in refused.stderr
    assert "fpr_gap: Race false-positive-rate gap" in refused.stderr
    assert "at most 0.0500 allowed" in refused.stderr
    assert "champion" not in MlflowClient().get_registered_model("georgia").aliases

    reason = ("--force", "--reason", "gap reviewed by the oversight board")
    forced = cli("promote", "--name", "georgia", "--version", version, *reason, uri=store)
    assert forced.returncode == 0, forced.stderr
    champion = MlflowClient().get_model_version_by_alias("georgia", "champion")
    assert str(champion.version) == version
    assert champion.tags["forced_promotion_reason"] == "gap reviewed by the oversight board"
