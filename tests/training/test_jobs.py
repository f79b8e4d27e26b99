"""The training jobs against a real MLflow store (SQLite in a temporary folder)."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.model_selection import train_test_split

from features.example import example_record
from features.records import read_records
from features.spec import DatasetSpec, load_spec, parse_spec
from features.synth_generic import generate_cohort
from features.validation import validate_records
from models.registry import REFERENCE_PROFILE, alias_history
from tests.commands import modules_imported
from tests.training.commands import cli
from training.fit import outcome
from training.promote import promote
from training.provenance import git_state
from training.train import TEST_SIZE, file_sha256, flat_metrics, model_card, split_sha256, train

pytestmark = pytest.mark.slow

EVALUATE_KEYS = {
    "n",
    "risk",
    "baselines",
    "needs",
    "macro_auc",
    "fairness",
    "nij_fair_accurate",
    "intervals",
    "unseen_values",
    "left_out_inputs",
    "beyond_training_range",
}
RISK_KEYS = {"auc", "brier", "log_loss", "ece", "calibration_slope", "calibration_intercept"}


@pytest.fixture(scope="module")
def trained(store, data_file, spec):
    return train(spec, data_file, name="reintegra", seed=3)


@pytest.fixture(scope="module")
def strict_spec(tmp_path_factory, spec) -> Path:
    """The built-in spec with a calibration gate no model can pass."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["gates"]["max_ece"] = 0.0001
    path = tmp_path_factory.mktemp("spec") / "strict.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def lenient_spec(tmp_path_factory, spec) -> Path:
    """The built-in spec with gates every model passes."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["gates"].update(
        min_auc_gain_over_incumbent=-1.0, max_auc_below_logistic=1.0, max_ece=1.0, max_fpr_gap=1.0
    )
    path = tmp_path_factory.mktemp("spec") / "lenient.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def lenient(store, data_file, lenient_spec):
    # seed 2: a split that ignored the outcome would miss the file's base rate by 0.015 here
    return train(load_spec(lenient_spec), data_file, name="lenient", seed=2)


def _model_input(records: pd.DataFrame, spec) -> pd.DataFrame:
    """Records as the model signature declares them: numbers as doubles, the rest as text."""
    typed = records.astype(object)
    for column in records:
        if spec.column(column).kind == "numeric":
            typed[column] = pd.to_numeric(records[column]).astype("float64")
    return typed


def test_train_registers_a_candidate_with_its_artifacts(trained, store):
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("reintegra", "candidate").version) == trained.model_version
    artifacts = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {
        "calibration.png",
        "roc.png",
        "shap_summary.png",
        "domain_importance.png",
        "fairness.csv",
        "fairness.json",
        "model_card.md",
        "evaluation.json",
        "spec.yaml",
    } <= artifacts
    run = client.get_run(trained.run_id)
    assert len(run.data.params["data_sha256"]) == 64
    assert {"seed", "version_lightgbm", "version_scikit-learn"} <= set(run.data.params)
    assert {"test_risk_auc", "validation_risk_auc", "test_Race_fpr_gap"} <= set(run.data.metrics)
    tags = client.get_registered_model("reintegra").tags
    assert any(k.startswith("alias_history.") and k.endswith(".candidate") for k in tags)


def test_a_run_logs_the_reference_profile_of_its_test_part(trained, training_typed, spec):
    """What serving measures drift against: every input and protected attribute, and every output."""
    path = mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path=REFERENCE_PROFILE)
    profile = json.loads(Path(path).read_text())
    y = outcome(training_typed, spec)
    _, test_rows = train_test_split(np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=3)
    test_part = training_typed.iloc[test_rows]
    assert profile["n"] == len(test_part) == trained.bundle.metadata["n_test"]
    assert list(profile["inputs"]) == spec.inputs() and list(profile["protected"]) == spec.protected
    violent = profile["inputs"]["Prior_Arrest_Episodes_Violent"]
    counted = test_part["Prior_Arrest_Episodes_Violent"].value_counts(normalize=True)
    assert violent["bins"] == spec.column("Prior_Arrest_Episodes_Violent").order
    assert violent["shares"] == pytest.approx([counted.get(level, 0.0) for level in violent["bins"]])
    assert violent["missing"] == pytest.approx(test_part["Prior_Arrest_Episodes_Violent"].isna().mean())
    race = profile["protected"]["Race"]
    assert dict(zip(race["bins"], race["shares"], strict=True)) == pytest.approx(
        test_part["Race"].value_counts(normalize=True).to_dict()
    )
    scores = trained.bundle.predict_frame(test_part)
    outputs = profile["outputs"]
    assert outputs["mean_risk"] == pytest.approx(scores["risk"].mean())
    assert list(outputs["bands"]) == spec.risk_bands.labels and sum(
        outputs["bands"].values()
    ) == pytest.approx(1)
    high = (scores["risk"] >= spec.risk_bands.cut_points[-1]).mean()
    assert outputs["bands"][spec.risk_bands.labels[-1]] == pytest.approx(high)
    assert list(outputs["need_flag_rates"]) == [n.name for n in spec.needs]


def test_a_run_logs_what_reproducing_it_needs(trained, data_file, spec, tmp_path):
    """Months later the run alone must say which spec content, split, packages and code made the model:
    the spec's name may mean other columns by then, and scipy solves the logistic fits."""
    run = MlflowClient().get_run(trained.run_id)
    logged = Path(mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path="spec.yaml"))
    assert run.data.params["spec_sha256"] == hashlib.sha256(logged.read_bytes()).hexdigest()
    assert parse_spec(logged.read_text()) == spec
    y = outcome(validate_records(read_records(data_file), spec)[0], spec)
    _, test_rows = train_test_split(np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=3)
    assert run.data.params["split_sha256"] == split_sha256(test_rows)
    assert run.data.params["version_scipy"] == metadata.version("scipy")
    code = git_state()
    assert run.data.tags.get("git_dirty") == (None if code is None else str(code[1]).lower())
    assert code is None or run.data.tags["mlflow.source.git.commit"] == code[0]


def test_the_registered_input_example_is_no_persons_record(trained, spec):
    """Whoever may read the registry reads a model's input example: it is built from the spec, not
    three people's records of the file (protected attribute included) as it was."""
    uri = f"models:/reintegra/{trained.model_version}/input_example.json"
    example = json.loads(Path(mlflow.artifacts.download_artifacts(uri)).read_text())
    assert not set(example["columns"]) & set(spec.protected)
    assert example["data"] == [list(example_record(spec).values())]
    assert example["columns"] == list(example_record(spec))


def test_the_registered_input_example_scores_for_a_spec_with_free_text(
    store, free_text_spec, free_text_raw, tmp_path
):
    """A free-text input has no value a spec can name, so the example left its column out, and the
    registered model refused its own example ('missing required column employer'; MLflow warned when
    logging it)."""
    data = tmp_path / "free_text.csv"
    free_text_raw.to_csv(data, index=False)
    result = train(free_text_spec, data, name="free_text_example", seed=1)
    model = mlflow.pyfunc.load_model(f"models:/free_text_example/{result.model_version}")
    assert list(model.input_example.columns) == free_text_spec.inputs()
    [scored] = model.predict(model.input_example)
    assert 0 < scored["risk"]["probability"] < 1


def test_model_card_covers_use_misuse_fairness_and_limits(trained, tmp_path):
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="model_card.md", dst_path=str(tmp_path)
    )
    card = Path(path).read_text()
    for heading in (
        "## Intended use",
        "## Misuse",
        "## Data",
        "## Inputs and domains",
        "## Relapse risk",
        "## Fairness",
        "## Limitations",
        "## Ethical considerations",
    ):
        assert heading in card
    assert "baseline: logistic regression" in card
    assert "baseline: incumbent: Georgia supervision risk score (first)" in card


def test_the_card_says_what_probabilities_each_risk_band_holds(trained, tmp_path):
    """The card tables observed rates per band; a reader needs the cut points to know what a band is."""
    card = model_card(
        trained.bundle, _evaluation(trained, tmp_path), [], "cohort.csv", "reintegra", "1", trained.run_id
    )
    assert (
        "Risk bands (a probability equal to a cut point is in the band above it):\n"
        "low below 0.35; moderate 0.35 to below 0.55; high 0.55 to below 0.75; "
        "very_high 0.75 and above." in card
    )


def test_the_card_says_which_inputs_training_never_saw_missing(trained, tmp_path):
    """It said 'a record with many gaps scores closer to the base rate', which a gap in an input training
    always had does not do: leaving out the felony arrests moved a synthetic record from 0.53 to 0.32."""
    card = model_card(
        trained.bundle, _evaluation(trained, tmp_path), [], "cohort.csv", "reintegra", "1", trained.run_id
    )
    seen = "Gang_Affiliated, Supervision_Risk_Score_First, Supervision_Level_First, Prison_Offense"
    assert f"- Missing inputs: {seen} were missing in some training records" in card
    assert "The other 27 (Gender, Age_at_Release, Residence_PUMA, Education_Level," in card
    assert "scores closer to the base rate" not in card


def test_model_card_names_its_version_run_data_and_gate_verdict(trained, store, tmp_path):
    """An auditor can tie the card to the exact version, run and file, and see whether it may serve."""
    folder = Path(mlflow.artifacts.download_artifacts(run_id=trained.run_id, dst_path=str(tmp_path)))
    card = (folder / "model_card.md").read_text()
    run = MlflowClient().get_run(trained.run_id)
    gates = json.loads((folder / "gates.json").read_text())
    failed = [g["name"] for g in gates if not g["passed"]]
    assert card.startswith(f"# Model card: reintegra version {trained.model_version}\n")
    assert f"MLflow run `{trained.run_id}`" in card
    assert f"sha256 `{run.data.params['data_sha256']}`" in card
    assert f"`python -m training reproduce --run {trained.run_id} --data FILE`" in card
    verdict = f"fails {len(failed)} of {len(gates)}" if failed else f"passes all {len(gates)}"
    assert f"**Promotion gates: {verdict}" in card
    version = MlflowClient().get_model_version("reintegra", trained.model_version)
    assert version.tags["gates_passed"] == str(not failed).lower()
    race = json.loads((folder / "evaluation.json").read_text())["fairness"]["Race"]["groups"]
    higher = max(race, key=lambda group: race[group]["fpr"])
    assert f"People of group {higher} who did not have the outcome are flagged" in card
    for group, row in race.items():
        assert f"| {group} | {row['n']} | {row['base_rate']:.3f} | {row['mean_predicted']:.3f} |" in card
    intervals = json.loads((folder / "evaluation.json").read_text())["intervals"]
    assert "95% bootstrap\nintervals over 200 resamples of the test part" in card
    assert f"AUC {intervals['auc'][0]:.4f} to {intervals['auc'][1]:.4f};" in card
    high, low = intervals["fpr_gap_groups"]
    assert (
        f"FPR of {high} minus FPR of {low}, 95% bootstrap interval:\n{intervals['fpr_gap'][0]:.4f} to" in card
    )
    assert run.data.metrics["test_interval_auc_low"] == pytest.approx(intervals["auc"][0])


def test_the_within_band_audit_reaches_the_csv_the_metrics_and_the_card(trained, spec, tmp_path):
    folder = Path(mlflow.artifacts.download_artifacts(run_id=trained.run_id, dst_path=str(tmp_path)))
    race = json.loads((folder / "evaluation.json").read_text())["fairness"]["Race"]
    assert race["band_rate_gap"] is not None, "the synthetic test part rates both groups in some band"
    card = (folder / "model_card.md").read_text()
    csv = pd.read_csv(folder / "fairness.csv").set_index("group")
    assert list(csv.index) == ["BLACK", "WHITE"]  # still one row per group
    for band in spec.risk_bands.labels:
        for group, cell in race["bands"][band].items():
            predicted, observed = (_three(cell[key]) for key in ("mean_predicted", "observed_rate"))
            assert f"| {band} | {group} | {cell['n']} | {predicted} | {observed} |" in card
            assert csv.loc[group, f"band_{band}_n"] == cell["n"]
            rate = float("nan") if cell["observed_rate"] is None else cell["observed_rate"]
            assert csv.loc[group, f"band_{band}_observed_rate"] == pytest.approx(rate, nan_ok=True)
    widest = race["band_rate_gap_band"]
    high, low = race["band_rate_gap_groups"]
    assert (
        f"The largest within-band gap is in band {widest}: group {high} shows the outcome at\n"
        f"{_three(race['bands'][widest][high]['observed_rate'])} against "
        f"{_three(race['bands'][widest][low]['observed_rate'])} for group {low} "
        f"(gap {race['band_rate_gap']:.4f})." in card
    )
    interval = json.loads((folder / "evaluation.json").read_text())["intervals"]["band_rate_gap"]
    assert interval[0] <= race["band_rate_gap"] <= interval[1]
    assert f"95% bootstrap interval of that difference: {interval[0]:.4f} to {interval[1]:.4f};" in card
    metrics = MlflowClient().get_run(trained.run_id).data.metrics
    assert metrics["test_Race_band_rate_gap"] == pytest.approx(race["band_rate_gap"])
    assert metrics["test_interval_band_rate_gap_high"] == pytest.approx(interval[1])


def _three(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def test_the_card_shows_a_small_band_cell_as_na_and_says_when_no_band_has_a_gap(trained, tmp_path):
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="evaluation.json", dst_path=str(tmp_path)
    )
    evaluation = json.loads(Path(path).read_text())
    race = evaluation["fairness"]["Race"]
    race |= {"band_rate_gap": None, "band_rate_gap_band": None, "band_rate_gap_groups": None}
    race["bands"]["low"]["WHITE"] = {"n": 4, "mean_predicted": 0.2, "observed_rate": None}
    card = model_card(trained.bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    assert "| low | WHITE | 4 | 0.200 | n/a |" in card
    assert "No band holds two groups with at least 30 people each, so there is no within-band gap." in card
    assert "The largest within-band gap" not in card


def _evaluation(trained, tmp_path) -> dict:
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="evaluation.json", dst_path=str(tmp_path)
    )
    return json.loads(Path(path).read_text())


def test_the_card_says_the_widest_band_gap_was_picked_from_several(trained, tmp_path):
    """The gap and its interval are the largest of several differences on one test part: the card
    says from how many, so a reviewer does not read a chosen maximum as a planned comparison."""
    evaluation = _evaluation(trained, tmp_path)
    race = evaluation["fairness"]["Race"]
    rated = [sum(c["observed_rate"] is not None for c in cells.values()) for cells in race["bands"].values()]
    assert sum(n == 2 for n in rated) >= 2, "the synthetic test part rates both groups in several bands"
    assert race["band_rate_gap_choices"] == sum(n == 2 for n in rated)
    card = model_card(trained.bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    assert (
        f"It is the widest of {sum(n == 2 for n in rated)} within-band differences between two groups on this"
        "\nsame test part, so it tends to overstate that band's difference, and so does its interval." in card
    )
    only = next(band for band, n in zip(race["bands"], rated, strict=True) if n == 2)
    for band, cells in race["bands"].items():
        if band != only:
            cells["WHITE"]["observed_rate"] = None
    race |= {"band_rate_gap_band": only, "band_rate_gap_groups": ["BLACK", "WHITE"]}
    race["band_rate_gap_choices"] = 1
    single = model_card(trained.bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    assert f"The largest within-band gap is in band {only}" in single
    assert "It is the widest of" not in single


def test_metric_names_hold_whatever_a_column_or_need_is_called(trained, tmp_path):
    """MLflow refuses parentheses and most punctuation in metric names; a spec's names are headers."""
    evaluation = _evaluation(trained, tmp_path)
    evaluation["fairness"]["Race (self-reported)"] = evaluation["fairness"].pop("Race")
    evaluation["needs"]["housing/shelter"] = evaluation["needs"].pop(next(iter(evaluation["needs"])))
    metrics = flat_metrics(evaluation)
    assert (
        metrics["test_Race _self-reported__fpr_gap"]
        == evaluation["fairness"]["Race (self-reported)"]["fpr_gap"]
    )
    assert "test_need_housing_shelter_auc" in metrics
    with mlflow.start_run():
        mlflow.log_metrics(metrics)


def test_intersectional_gaps_are_run_metrics_beside_each_attributes(trained, tmp_path):
    """A data scientist compares runs in MLflow by metric: an intersection's gaps, which no gate reads,
    must be there too, or a run that widened one would look no different."""
    evaluation = _evaluation(trained, tmp_path)
    evaluation["intersections"]["Race x Gender"] = evaluation["fairness"]["Race"]
    metrics = flat_metrics(evaluation)
    for gap in ("fpr_gap", "fnr_gap", "ece_gap", "band_rate_gap"):
        assert metrics[f"test_Race x Gender_{gap}"] == evaluation["fairness"]["Race"][gap]
    with mlflow.start_run():
        mlflow.log_metrics(metrics)


def test_the_card_says_when_its_macro_auc_leaves_a_need_out(trained, tmp_path):
    evaluation = _evaluation(trained, tmp_path)
    assert evaluation["needs_without_auc"] == []
    complete = model_card(trained.bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    assert f"Macro AUC {evaluation['macro_auc']:.4f}.\n" in complete
    first = trained.bundle.spec.needs[0].name
    evaluation["needs"][first]["auc"] = None
    evaluation["needs_without_auc"] = [first]
    card = model_card(trained.bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    total = len(trained.bundle.spec.needs)
    said = f"over {total - 1} of {total} needs:\n{first} has no AUC here (the labelled test rows hold one"
    assert f"{said} outcome)." in card


def test_the_card_does_not_call_equal_false_positive_rates_more_often(trained, tmp_path):
    """At a high threshold both groups may flag no non-recidivist: 0.000 is not more often than 0.000."""
    evaluation = _evaluation(trained, tmp_path)
    race = evaluation["fairness"]["Race"]
    for row in race["groups"].values():
        row["fpr"] = 0.0
    race["fpr_gap"] = 0.0
    card = model_card(trained.bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    assert "flagged (probability at or above 0.5) more often" not in card
    assert (
        "Every group compared here is flagged (probability at or above 0.5) at the same rate among those\n"
        "who did not have the outcome: 0.000." in card
    )


def test_the_card_speaks_of_the_specs_outcome_not_of_an_arrest(trained, tmp_path):
    """Another layout's outcome may be a conviction: the card's sentences must hold for it too."""
    data = trained.bundle.spec.model_dump(by_alias=True, exclude_none=True)
    data["outcome"]["description"] = "New conviction within 3 years of the start of supervision."
    bundle = replace(trained.bundle, spec=DatasetSpec.model_validate(data))
    bundle.metadata = trained.bundle.metadata
    card = model_card(
        bundle, _evaluation(trained, tmp_path), [], "cohort.csv", "reintegra", "1", trained.run_id
    )
    prose = [line for line in card.splitlines() if not line.startswith("|")]  # tables list input names
    for name in sorted(bundle.inputs, key=len, reverse=True):  # and so does a limitation
        prose = [line.replace(name, "") for line in prose]
    assert [line for line in prose if "arrest" in line.lower()] == []
    assert "the outcome (New conviction within 3 years of the start of supervision) is a record" in card
    assert "who did not have the outcome are flagged" in card


def test_the_card_of_a_layout_without_needs_speaks_of_risk_only(trained, tmp_path):
    """A spec may declare no needs: its card spoke of the likely needs and their labels' limits, under an
    empty table headed by need, AUC and interventions."""
    data = trained.bundle.spec.model_dump(by_alias=True, exclude_none=True)
    data["needs"] = []
    bundle = replace(trained.bundle, spec=DatasetSpec.model_validate(data), needs={})
    bundle.metadata = trained.bundle.metadata
    evaluation = _evaluation(trained, tmp_path) | {"needs": {}, "macro_auc": None, "needs_without_auc": []}
    card = model_card(bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    needs = card[card.index("## Needs (test part)") : card.index("## Fairness")]
    assert needs == (
        "## Needs (test part)\nThe spec declares no needs: this version predicts the relapse risk only.\n\n"
    )
    assert "a risk band, and an exact explanation of every number" in card
    assert "need" not in card.replace(needs, "")[card.index("## Misuse") :].lower()


def test_domain_importance_is_the_size_of_each_domains_sum(trained, spec, training_raw, tmp_path):
    """The same per-domain sums the explanations report, so the plot and a score agree."""
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="domain_importance.csv", dst_path=str(tmp_path)
    )
    importance = pd.read_csv(path, index_col="domain")["mean_abs_domain_contribution"]
    assert list(importance) == sorted(importance, reverse=True)
    assert set(importance.index) == set(spec.domains()[name] for name in trained.bundle.inputs)


def test_registered_model_scores_like_the_in_process_bundle(trained, training_raw, spec):
    records = training_raw.iloc[:40][[*spec.inputs(), *spec.protected]]
    model = mlflow.pyfunc.load_model(f"models:/reintegra/{trained.model_version}")
    assert model.predict(_model_input(records, spec)) == trained.bundle.score_records(
        records.to_dict("records")
    )


def test_pyfunc_refuses_invalid_records(trained, training_raw, spec):
    records = training_raw.iloc[:2][[*spec.inputs(), *spec.protected]].copy()
    records["Prison_Years"] = "forever"
    model = mlflow.pyfunc.load_model(f"models:/reintegra/{trained.model_version}")
    with pytest.raises(ValueError, match="'forever' is not allowed"):
        model.predict(_model_input(records, spec))


def test_an_empty_batch_scores_to_nothing(trained, training_raw, spec):
    """Batch scorers (Spark's pandas UDFs among them) may pass an empty batch."""
    records = training_raw.iloc[:0][[*spec.inputs(), *spec.protected]]
    model = mlflow.pyfunc.load_model(f"models:/reintegra/{trained.model_version}")
    assert model.predict(_model_input(records, spec)) == []


def _numbers(score: dict) -> dict:
    """A score's numbers and flags, without the input values as shown (text as the file or frame had it)."""
    explained = {"risk": score["explanation"]["risk"], **score["explanation"]["needs"]}
    return {
        "risk": score["risk"],
        "needs": score["needs"],
        "explanation": {
            output: (
                e["base_value"],
                e["log_odds"],
                [(c["input"], c["contribution"]) for c in e["contributions"]],
            )
            for output, e in explained.items()
        },
        "warnings": score.get("warnings"),
    }


def test_score_writes_each_record_scored_as_the_registered_model_scores_it(
    trained, store, training_raw, spec, tmp_path
):
    """Offline scoring of a file: MLflow's own `mlflow models predict` refuses a CSV (Residence_PUMA
    reads as numbers, the signature says text), so the command reads it as the pipeline does."""
    records = training_raw.iloc[:30].copy()
    records.loc[records.index[3], "Prior_Arrest_Episodes_Felony"] = None
    data, out = tmp_path / "people.csv", tmp_path / "new folder" / "scores.JSONL"
    records.to_csv(data, index=False)
    model = "models:/reintegra@candidate"
    result = cli("score", "--model", model, "--data", str(data), "--out", str(out), uri=store)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(2, 32))
    assert [line["id"] for line in lines] == records["ID"].astype(str).tolist()
    provenance = {"name": "reintegra", "version": trained.model_version, "run_id": trained.run_id}
    assert all(line["model"] == provenance for line in lines)
    registered = mlflow.pyfunc.load_model(f"models:/reintegra/{trained.model_version}")
    expected = registered.predict(_model_input(records[[*spec.inputs(), *spec.protected]], spec))
    assert [_numbers(line) for line in lines] == [_numbers(score) for score in expected]
    assert lines[3]["warnings"][0].startswith("Input Prior_Arrest_Episodes_Felony is left out")
    summary = json.loads(result.stdout)
    assert summary["scored"] == 30 and summary["with_warnings"] == 1
    labels = spec.risk_bands.labels
    assert summary["bands"] == {band: sum(line["risk"]["band"] == band for line in lines) for band in labels}
    assert summary["left_out_inputs"] == {"Prior_Arrest_Episodes_Felony": 1}


def test_score_writes_nothing_for_a_file_with_an_invalid_record_or_for_another_kind_of_file(
    trained, store, training_raw, tmp_path
):
    """Never half a file of scores: the pipeline's errors, and no output (nor a partial one)."""
    data, out = tmp_path / "people.csv", tmp_path / "scores.jsonl"
    training_raw.iloc[:5].assign(Prison_Years=["forever", *["1-2 years"] * 4]).to_csv(data, index=False)
    model = "models:/reintegra@candidate"
    invalid = cli("score", "--model", model, "--data", str(data), "--out", str(out), uri=store)
    assert invalid.returncode == 2
    assert "row 2, column Prison_Years: 'forever' is not allowed" in invalid.stderr
    assert "Traceback" not in invalid.stderr and list(tmp_path.iterdir()) == [data]
    csv_out = cli("score", "--model", model, "--data", str(data), "--out", str(tmp_path / "s.csv"), uri=store)
    assert csv_out.returncode == 2 and "name the file *.jsonl" in csv_out.stderr
    records = tmp_path / "people.jsonl"
    training_raw.iloc[:5].to_json(records, orient="records", lines=True)
    before = records.read_bytes()
    itself = cli("score", "--model", model, "--data", str(records), "--out", str(records), uri=store)
    assert itself.returncode == 2
    assert f"--out must name a new file, not the data file itself ({records})" in itself.stderr
    assert records.read_bytes() == before
    records.unlink()
    by_run = cli(
        "score", "--model", f"runs:/{trained.run_id}/model", "--data", str(data), "--out", str(out), uri=store
    )
    assert (
        by_run.returncode == 2 and "score takes models:/NAME/VERSION or models:/NAME@ALIAS" in by_run.stderr
    )


def test_score_refuses_a_model_uri_that_names_no_registered_version_in_one_line(
    trained, store, training_raw, tmp_path
):
    """A name alone parses as a logged model's id: score said "models:/reintegra names a logged model",
    of the registered model's own name."""
    data, out = tmp_path / "people.csv", tmp_path / "scores.jsonl"
    training_raw.iloc[:5].to_csv(data, index=False)
    logged = MlflowClient().get_model_version("reintegra", trained.model_version).source
    takes = (
        "score takes models:/NAME/VERSION or models:/NAME@ALIAS, so that each score names the version "
        "that made it"
    )
    refusals = {
        "models:/reintegra": f"models:/reintegra names no registered version; {takes}",
        logged: f"{logged} names no registered version; {takes}",
        "models:/reintegra/99": "cannot load model models:/reintegra/99: Model Version (name=reintegra, "
        "version=99) not found",
        "models:/reintegra@nope": "cannot load model models:/reintegra@nope: Registered model alias nope "
        "not found.",
    }
    for model, refusal in refusals.items():
        result = cli("score", "--model", model, "--data", str(data), "--out", str(out), uri=store)
        assert (result.returncode, result.stderr) == (2, f"nothing was scored:\n{refusal}\n")
    assert list(tmp_path.iterdir()) == [data]


def test_score_takes_records_without_ids(trained, store, training_raw, tmp_path):
    """Ids are for people reading the scores, not for the model: a file without them is scored by row."""
    data, out = tmp_path / "people.csv", tmp_path / "scores.jsonl"
    training_raw.iloc[:5].drop(columns=["ID"]).to_csv(data, index=False)
    result = cli(
        "score", "--model", "models:/reintegra@candidate", "--data", str(data), "--out", str(out), uri=store
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["row"] for line in lines] == [2, 3, 4, 5, 6]
    assert not any("id" in line for line in lines)


def test_a_registered_version_whose_files_are_damaged_is_named_in_one_line(
    trained, store, training_raw, data_file, tmp_path
):
    """A bundle file gone from the artifact store printed only "[Errno 2] No such file or directory: ...",
    and an empty one "cannot load model ...: " with nothing after it."""
    data, out = tmp_path / "people.csv", tmp_path / "scores.jsonl"
    training_raw.iloc[:5].to_csv(data, index=False)
    model = f"models:/reintegra/{trained.model_version}"
    logged = MlflowClient().get_model_version("reintegra", trained.model_version).source
    artifacts = mlflow.get_logged_model(logged.removeprefix("models:/")).artifact_location
    bundle = Path(urlparse(artifacts).path) / "artifacts" / "bundle.joblib"
    kept = bundle.read_bytes()
    try:
        bundle.unlink()
        gone = f"cannot load model {model}: [Errno 2] No such file or directory: '{bundle}'\n"
        scored = cli("score", "--model", model, "--data", str(data), "--out", str(out), uri=store)
        assert (scored.returncode, scored.stderr) == (2, f"nothing was scored:\n{gone}")
        evaluated = cli("evaluate", "--model", model, "--data", str(data_file), uri=store)
        assert (evaluated.returncode, evaluated.stderr) == (2, gone)
        bundle.write_bytes(b"")
        scored = cli("score", "--model", model, "--data", str(data), "--out", str(out), uri=store)
        assert scored.stderr == f"nothing was scored:\ncannot load model {model}: EOFError\n"
    finally:
        bundle.write_bytes(kept)
    assert list(tmp_path.iterdir()) == [data]


def test_score_takes_a_file_that_leaves_out_an_optional_column(
    store, free_text_spec, free_text_raw, tmp_path
):
    """An optional column left out is missing in every row, as validate --unlabelled reads it: score wrote
    every score, then said "nothing was scored: records lack input columns" and exited 2."""
    spec = free_text_spec.model_dump(by_alias=True, exclude_none=True)
    spec["name"] = "optional_employer"
    next(c for c in spec["columns"] if c["name"] == "employer")["required"] = False
    spec_file, data = tmp_path / "optional.yaml", tmp_path / "train.csv"
    spec_file.write_text(yaml.safe_dump(spec))
    free_text_raw.to_csv(data, index=False)
    trained = cli("train", "--spec", str(spec_file), "--data", str(data), "--name", "optional", uri=store)
    assert trained.returncode == 0, trained.stderr
    people = free_text_raw.iloc[:20].drop(columns=["rearrested"])
    without, blank = tmp_path / "without.csv", tmp_path / "blank.csv"
    people.drop(columns=["employer"]).to_csv(without, index=False)
    people.assign(employer=None).to_csv(blank, index=False)
    scored = {}
    for file in (without, blank):
        out = tmp_path / f"{file.stem}.jsonl"
        result = cli(
            "score", "--model", "models:/optional/1", "--data", str(file), "--out", str(out), uri=store
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["scored"] == 20
        scored[file.stem] = out.read_text()
    assert scored["without"] == scored["blank"]


def test_evaluate_prints_every_key(trained, store, data_file):
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(data_file), uri=store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= EVALUATE_KEYS
    assert set(report["risk"]) >= RISK_KEYS
    assert set(report["baselines"]) == {"logistic", "incumbent"}
    assert set(report["needs"]) == {n.name for n in load_spec("georgia_parole").needs}
    race = report["fairness"]["Race"]
    assert set(race["groups"]) == {"BLACK", "WHITE"}
    assert {"n", "base_rate", "mean_predicted", "auc", "ece", "fpr", "fnr"} <= set(race["groups"]["BLACK"])
    assert {"fpr_gap", "fnr_gap", "band_rate_gap", "band_rate_gap_band", "band_rate_gap_groups"} <= set(race)
    assert list(race["bands"]) == load_spec("georgia_parole").risk_bands.labels
    assert set(race["bands"]["low"]["WHITE"]) == {"n", "mean_predicted", "observed_rate"}
    assert 0 < report["nij_fair_accurate"] < 1
    n_train = trained.bundle.metadata["n_train"]
    warning = f"warning: {n_train} of the {report['n']} rows of {data_file} are rows this model was fitted on"
    assert warning in result.stderr
    assert (report["includes_training_rows"], report["training_rows"]) == (True, n_train)
    assert report["data_sha256"] == file_sha256(data_file)
    assert report["unseen_values"] == {} and "never saw" not in result.stderr
    assert report["left_out_inputs"] == {} and "leave out" not in result.stderr


def test_evaluate_takes_a_file_without_supervision_columns_saying_what_it_cannot_measure(
    trained, store, training_raw, spec, tmp_path
):
    """A file of release-time facts and outcomes was refused ('missing required column
    Violations_ElectronicMonitoring', and 15 more), though the risk model reads none of them."""
    later = [c.name for c in spec.columns if c.known == "supervision"]
    whole, at_release = tmp_path / "whole.csv", tmp_path / "at_release.csv"
    training_raw.iloc[:600].to_csv(whole, index=False)
    training_raw.iloc[:600].drop(columns=later).assign(Training_Sample="1").to_csv(at_release, index=False)
    model = "models:/reintegra@candidate"
    full = cli("evaluate", "--model", model, "--data", str(whole), uri=store)
    result = cli("evaluate", "--model", model, "--data", str(at_release), uri=store)
    assert result.returncode == 0, result.stderr
    report, baseline = json.loads(result.stdout), json.loads(full.stdout)
    assert report["risk"] == baseline["risk"] and report["fairness"] == baseline["fairness"]
    unmeasured = [n.name for n in spec.needs if set(n.sources) & set(later)]
    assert unmeasured and report["needs_without_auc"] == unmeasured
    measured = [n.name for n in spec.needs if n.name not in unmeasured]
    assert {n: report["needs"][n] for n in measured} == {n: baseline["needs"][n] for n in measured}
    assert baseline["includes_training_rows"] is True
    assert (report["includes_training_rows"], report["training_rows"]) == (True, baseline["training_rows"])
    lines = result.stderr.splitlines()
    for need in spec.needs:
        if need.name in unmeasured:
            lacked = [s for s in need.sources if s in later]
            column = "column" if len(lacked) == 1 else "columns"
            assert (
                f"warning: need {need.name} has no AUC: {at_release} lacks its source {column} "
                + ", ".join(lacked)
                in lines
            )
    assert f"warning: macro_auc is over {len(measured)} of the 6 needs ({', '.join(measured)})" in lines
    lacks = [
        line for line in lines if line.startswith(f"warning: {at_release} lacks the supervision-time columns")
    ]
    assert len(lacks) == 1 and lacks[0].endswith(f"needs {', '.join(unmeasured)} have no AUC")
    assert "macro_auc is over" not in full.stderr and "does not declare" not in full.stderr
    assert (
        f"warning: {at_release} has columns the spec does not declare, ignored: Training_Sample"
        in result.stderr
    )


def test_evaluate_counts_rows_that_leave_out_an_input_training_always_had(
    trained, store, training_raw, tmp_path
):
    """Their scores rest on what the models never learned: the report counts them, as a score warns."""
    rows = training_raw.iloc[:40].copy()
    rows.loc[rows.index[:3], "Prior_Arrest_Episodes_Felony"] = None
    data = tmp_path / "left_out.csv"
    rows.to_csv(data, index=False)
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(data), uri=store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["left_out_inputs"] == {"Prior_Arrest_Episodes_Felony": 3}
    assert (
        "warning: 3 rows leave out Prior_Arrest_Episodes_Felony, which every training record gave: the model "
        "never learned what its absence means, so their scores may be off. See left_out_inputs in the JSON."
    ) in result.stderr


def test_evaluate_counts_free_text_values_training_never_saw(store, free_text_spec, free_text_raw, tmp_path):
    """They are scored as missing: the report names them, with counts, instead of scoring them silently."""
    trained_on, spec_file = tmp_path / "trained_on.csv", tmp_path / "free_text.yaml"
    free_text_raw[free_text_raw["offence"] != "other"].assign(notes="x").to_csv(trained_on, index=False)
    spec_file.write_text(yaml.safe_dump(free_text_spec.model_dump(by_alias=True, exclude_none=True)))
    trained = cli(
        "train", "--spec", str(spec_file), "--data", str(trained_on), "--name", "free_text", uri=store
    )
    assert trained.returncode == 0, trained.stderr
    assert (
        f"warning: {trained_on} has columns the spec does not declare, ignored: notes; declare a column in "
        "the spec for the models to read it"
    ) in trained.stderr.splitlines()
    renamed = free_text_raw.copy()
    renamed.loc[:4, "employer"] = "Acme Ltd"
    renamed.loc[5:6, "employer"] = " Beta "
    renamed.loc[7, "employer"] = None
    other = int((renamed["offence"] == "other").sum())
    renamed.loc[8, "age"] = "100"  # the spec's highest age, older than anyone trained on
    trained_ages = free_text_raw.loc[free_text_raw["offence"] != "other", "age"].astype(float)
    older = int((renamed["age"].astype(float) > trained_ages.max()).sum())
    evaluated = tmp_path / "evaluated.csv"
    renamed.to_csv(evaluated, index=False)
    result = cli("evaluate", "--model", "models:/free_text@candidate", "--data", str(evaluated), uri=store)
    assert result.returncode == 0, result.stderr
    unseen = json.loads(result.stdout)["unseen_values"]
    assert unseen == {
        "employer": {"rows": 7, "distinct": 2, "most_common": {"Acme Ltd": 5, "Beta": 2}},
        "offence": {"rows": other, "distinct": 1, "most_common": {"other": other}},
    }
    assert (
        "warning: 7 rows give employer a value this model never saw in training (2 distinct, most common "
        "'Acme Ltd'); each counts as missing, as if the record had left it out." in result.stderr
    )
    assert (
        f"warning: {other} rows give offence a value this model never saw in training (1 distinct, most "
        "common 'other'); the model never learned what they mean." in result.stderr
    )
    assert json.loads(result.stdout)["beyond_training_range"] == {"age": {"below": 0, "above": older}}
    assert (
        f"warning: 0 rows give age a value below every training record's and {older} above: the trees split "
        "on them as on the range's ends. See beyond_training_range in the JSON." in result.stderr
    )


def test_evaluate_counts_the_rows_it_was_fitted_on_in_a_file_that_is_not_the_training_file(
    trained, store, training_raw, training_typed, spec, tmp_path
):
    """The test part with five training rows, shuffled: not the training file's bytes, but those five
    rows' numbers are as optimistic, so the report counts them (by the rows' salted hashes)."""
    y = outcome(training_typed, spec)
    fitted, held_out = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=trained.bundle.metadata["seed"]
    )
    mixed = tmp_path / "mixed.csv"
    training_raw.iloc[[*held_out, *fitted[:5]]].sample(frac=1, random_state=0).to_csv(mixed, index=False)
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(mixed), uri=store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["includes_training_rows"], report["training_rows"]) == (True, 5)
    assert (
        f"warning: 5 of the {len(held_out) + 5} rows of {mixed} are rows this model was fitted on (same id "
        "and values); their numbers are optimistic" in result.stderr
    )


def test_evaluate_on_other_people_says_none_was_fitted_on_even_under_the_same_ids(
    trained, store, training_raw, training_typed, spec, tmp_path
):
    """The held-out rows numbered as the training rows were, as a later export numbering its rows from
    1 would: other people, so none of their numbers is optimistic."""
    y = outcome(training_typed, spec)
    fitted, held_out = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=trained.bundle.metadata["seed"]
    )
    other = tmp_path / "renumbered.csv"
    recycled = training_raw[spec.id].iloc[fitted[: len(held_out)]].to_numpy()
    training_raw.iloc[held_out].assign(**{spec.id: recycled}).to_csv(other, index=False)
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(other), uri=store)
    assert result.returncode == 0, result.stderr
    assert "fitted on" not in result.stderr
    report = json.loads(result.stdout)
    assert (report["includes_training_rows"], report["training_rows"]) == (False, 0)


def test_training_rows_are_kept_only_as_hashes_salted_per_run(trained, lenient):
    """64-bit hashes under a salt of each run's own: two models' hashes cannot be joined to find the
    people both were trained on (these two share about half their training rows)."""
    ours, theirs = trained.bundle.metadata, lenient.bundle.metadata
    assert ours["training_row_hashes"].dtype == np.uint64
    assert len(ours["training_row_hashes"]) == ours["n_train"]
    assert ours["training_row_salt"] != theirs["training_row_salt"]
    assert not set(ours["training_row_hashes"]) & set(theirs["training_row_hashes"])


def test_evaluate_stops_on_an_invalid_file_with_the_pipelines_problems(
    trained, store, training_raw, tmp_path
):
    """No evaluation of the rows that happen to be valid: a metric over part of a file reads as the file's."""
    data = tmp_path / "held_out.csv"
    invalid = {"Prison_Years": "forever", "Gender": "X"}
    training_raw.iloc[:40].assign(**{c: [v, *training_raw[c].iloc[1:40]] for c, v in invalid.items()}).to_csv(
        data, index=False
    )
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(data), uri=store)
    assert (result.returncode, result.stdout) == (2, "")
    assert "Traceback" not in result.stderr
    assert "row 2, column Prison_Years: 'forever' is not allowed" in result.stderr
    assert "row 2, column Gender: 'X' is not allowed" in result.stderr


def test_evaluate_says_why_a_file_of_one_outcome_has_no_auc(trained, store, training_raw, tmp_path):
    """Only re-arrested people (a list of recidivists, say): the AUC and calibration slope are null, which
    the JSON showed and nothing said."""
    reoffended = tmp_path / "reoffended.csv"
    training_raw[training_raw["Recidivism_Within_3years"] == "Yes"].to_csv(reoffended, index=False)
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(reoffended), uri=store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["risk"]["auc"] is None and report["base_rate"] == 1
    assert (
        f"warning: Recidivism_Within_3years is Yes in all {report['n']} rows of {reoffended}: the risk AUC "
        "and calibration slope need both outcomes, so they are null" in result.stderr
    )


def test_evaluate_says_why_a_need_has_no_auc_when_its_columns_are_there(
    trained, store, training_raw, tmp_path
):
    """Sources blank in every row leave a need unlabelled; labelled rows that all agree leave it no AUC
    either: each need is named with its own reason, and which way its rows agree."""
    data = tmp_path / "cohort.csv"
    rows = training_raw.iloc[:600].assign(
        Residence_Changes=None, Percent_Days_Employed=1.0, Condition_MH_SA="Yes"
    )
    rows.to_csv(data, index=False)
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(data), uri=store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["needs_without_auc"] == ["employment", "housing", "treatment"]
    both = "and an AUC needs rows with and without it"
    assert [line for line in result.stderr.splitlines() if "AUC" in line or "macro_auc" in line] == [
        f"warning: need employment has no AUC: none of its 600 labelled rows has it, {both}",
        f"warning: need housing has no AUC: no row of {data} has its sources (Residence_Changes), so none "
        "has its label",
        f"warning: need treatment has no AUC: all of its 600 labelled rows have it, {both}",
        "warning: macro_auc is over 3 of the 6 needs (substance_use, education, compliance)",
    ]


def test_evaluate_says_when_a_protected_attribute_is_missing(trained, store, training_raw, tmp_path):
    """An export with Race left empty audited nobody: the JSON's fairness had no groups and null gaps,
    and nothing said so beside numbers that read as a clean audit."""
    rows = training_raw.head(400)
    without_race, partly = tmp_path / "without_race.csv", tmp_path / "partly.csv"
    rows.assign(Race="").to_csv(without_race, index=False)
    rows.assign(Race=rows["Race"].where(rows.index % 4 != 0)).to_csv(partly, index=False)
    said = {
        without_race: "400 of the 400 rows of {}, so nobody was audited by Race (no groups, null gaps)",
        partly: "100 of the 400 rows of {}; those rows are in no group of the audit by Race",
    }
    for data, words in said.items():
        result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(data), uri=store)
        assert result.returncode == 0, result.stderr
        assert f"warning: Race is missing in {words.format(data)}" in result.stderr


def test_promote_refuses_a_failing_version_and_says_by_how_much(store, data_file, strict_spec):
    strict = train(load_spec(strict_spec), data_file, name="strict", seed=1)
    result = cli("promote", "--name", "strict", "--version", strict.model_version, uri=store)
    assert result.returncode == 2
    assert "refused to promote strict version 1" in result.stderr
    assert "calibration: ECE" in result.stderr and "at most 0.0001 allowed" in result.stderr
    client = MlflowClient()
    assert "champion" not in client.get_registered_model("strict").aliases

    unexplained = cli("promote", "--name", "strict", "--version", "1", "--force", uri=store)
    assert unexplained.returncode == 2 and "needs --reason" in unexplained.stderr

    forced = cli("promote", "--name", "strict", "--version", "1", "--force", "--reason", "pilot", uri=store)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["forced"] is True
    version = client.get_model_version("strict", "1")
    assert version.tags["forced_promotion_reason"] == "pilot"
    assert "alias.champion.set_at" in version.tags
    history = client.get_registered_model("strict").tags
    assert any(v == "champion: version - -> 1 (forced: pilot)" for v in history.values())

    # Forcing the champion again moves nothing, so the reason it became champion stays on record.
    again = cli("promote", "--name", "strict", "--version", "1", "--force", "--reason", "later", uri=store)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["moved"] is False
    assert client.get_model_version("strict", "1").tags["forced_promotion_reason"] == "pilot"
    # Unforced, it is no refusal either: the version stays champion, for the reason recorded then.
    unforced = cli("promote", "--name", "strict", "--version", "1", uri=store)
    assert unforced.returncode == 0, unforced.stderr
    assert json.loads(unforced.stdout)["moved"] is False and "refused" not in unforced.stderr
    assert "strict version 1 is already champion" in unforced.stderr


def test_a_blank_reason_is_refused_like_a_missing_one(store):
    with pytest.raises(ValueError, match="--reason"):
        promote("never_registered", "1", force=True, reason="  ")


def test_forcing_a_passing_version_records_no_forced_reason(lenient):
    result = promote("lenient", lenient.model_version, force=True, reason="just in case")
    assert all(g["passed"] for g in result["gates"])
    assert result["forced"] is False
    client = MlflowClient()
    version = client.get_model_version("lenient", lenient.model_version)
    assert "forced_promotion_reason" not in version.tags
    assert "alias.champion.set_at" in version.tags
    history = client.get_registered_model("lenient").tags
    moved = f"champion: version - -> {lenient.model_version} (gates passed; reason: just in case)"
    assert moved in history.values(), "the reason given is kept with the move, not dropped"


def test_a_version_typed_with_spaces_or_a_leading_zero_is_recorded_as_its_number(lenient, store):
    """MLflow finds version 1 from " 01"; the answer and the alias history must still say 1."""
    version = lenient.model_version
    result = cli("promote", "--name", "lenient", "--version", f" 0{version}", uri=store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model_version"] == version
    moves = [entry for _, entry in alias_history("lenient")]
    assert f"-> {version} (gates passed" in moves[0], "the first move: promotions share the version"
    assert all(f"0{version}" not in entry for entry in moves)


def test_promoting_the_champion_again_moves_nothing_and_records_no_move(lenient, store):
    """A second promote of the same version wrote 'champion: version 1 -> 1' and reset its set_at."""
    version = lenient.model_version
    promote("lenient", version)
    client = MlflowClient()
    since = client.get_model_version("lenient", version).tags["alias.champion.set_at"]
    moves = alias_history("lenient")
    result = cli("promote", "--name", "lenient", "--version", version, uri=store)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["moved"] is False and answer["moved_at"] == since
    assert f"lenient version {version} is already champion (since {since}); nothing moved" in result.stderr
    assert alias_history("lenient") == moves
    assert all(f"version {version} -> {version}" not in entry for _, entry in moves)
    assert client.get_model_version("lenient", version).tags["alias.champion.set_at"] == since


def test_the_test_part_is_a_stratified_quarter_of_the_file(lenient, training_typed, spec):
    path = mlflow.artifacts.download_artifacts(run_id=lenient.run_id, artifact_path="evaluation.json")
    evaluation = json.loads(Path(path).read_text())
    y = outcome(training_typed, spec)
    assert evaluation["n"] == lenient.bundle.metadata["n_test"] == round(TEST_SIZE * len(y)) == 1000
    assert abs(evaluation["base_rate"] - y.mean()) <= 1 / evaluation["n"]


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_the_test_part_is_kept_out_of_every_fitted_model(store, free_text_spec, free_text_raw, tmp_path):
    """Each row its own employer: the encoder learns the values of the rows it is fitted on, so exactly
    the test part's values must be ones the model never saw, or its numbers were measured on training rows.
    Training says nothing of numpy's about that input in its SHAP plot (an all-NaN slice, before)."""
    unique = free_text_raw.assign(employer=[f"employer {i}" for i in range(len(free_text_raw))])
    data = tmp_path / "unique_employers.csv"
    unique.to_csv(data, index=False)
    result = train(free_text_spec, data, name="held_out", seed=1)
    unseen = result.bundle.unlearned_inputs(unique)["unseen_values"]["employer"]
    n_test = result.bundle.metadata["n_test"]
    assert unseen["rows"] == unseen["distinct"] == n_test == round(TEST_SIZE * len(unique))


def test_promote_moves_champion_when_gates_pass(trained, store):
    gates = mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path="gates.json")
    report = json.loads(Path(gates).read_text())
    args = ["promote", "--name", "reintegra", "--version", trained.model_version]
    if not all(g["passed"] for g in report):
        args += ["--force", "--reason", "synthetic test cohort"]
    result = cli(*args, uri=store)
    assert result.returncode == 0, result.stderr
    champion = MlflowClient().get_model_version_by_alias("reintegra", "champion")
    assert str(champion.version) == trained.model_version


def test_bad_training_data_stops_and_registers_nothing(store, tmp_path, training_raw):
    broken = training_raw.drop(columns=["Gender"])
    broken.loc[broken.index[6], "Prison_Years"] = "forever"
    path = tmp_path / "broken.csv"
    broken.to_csv(path, index=False)
    result = cli("train", "--spec", "georgia_parole", "--data", str(path), "--name", "broken", uri=store)
    assert result.returncode == 2
    assert "nothing was registered" in result.stderr
    assert "missing required column Gender" in result.stderr
    assert "row 8, column Prison_Years: 'forever' is not allowed" in result.stderr
    assert MlflowClient().search_registered_models(filter_string="name='broken'") == []


def test_bootstrap_stops_on_data_it_cannot_train_on_and_registers_nothing(store, tmp_path, training_raw):
    """`make run` bootstraps a new store: a bad file is said as train says it, and no champion is made."""
    broken = training_raw.copy()
    broken.loc[broken.index[6], "Prison_Years"] = "forever"
    path, missing = tmp_path / "broken.csv", tmp_path / "gone.csv"
    broken.to_csv(path, index=False)
    for data, said in (
        (path, "1 problem(s) in the data:\nrow 8, column Prison_Years: 'forever' is not allowed"),
        (missing, f"data file {missing} does not exist"),
    ):
        result = cli(
            "bootstrap", "--spec", "georgia_parole", "--data", str(data), "--name", "unbooted", uri=store
        )
        assert result.returncode == 2
        assert f"bootstrap stopped:\n{said}" in result.stderr
        assert "Traceback" not in result.stderr
    assert MlflowClient().search_registered_models(filter_string="name='unbooted'") == []


def test_a_spec_with_no_model_input_is_refused_in_its_own_terms(store, tmp_path):
    """Every column protected or known only during supervision: train said "no input columns left after
    selecting by known time and exclusions", the encoder's parameters, which a spec author never set."""
    spec, data = tmp_path / "no_inputs.yaml", tmp_path / "records.csv"
    spec.write_text(
        "name: no_inputs\nid: pid\noutcome: {column: rearrested, horizon_years: 2}\n"
        "risk_bands: {cut_points: [0.5], labels: [low, high]}\nprotected: [race]\ncolumns:\n"
        "  - {name: race, kind: categorical, domain: d, values: [A, B]}\n"
        "  - {name: moves, kind: numeric, known: supervision, domain: d}\n"
    )
    rows = [f"{i},{'AB'[i % 2]},{i % 5},{('Yes', 'No')[i % 3 == 0]}" for i in range(400)]
    data.write_text("pid,race,moves,rearrested\n" + "\n".join(rows) + "\n")
    result = cli("train", "--spec", str(spec), "--data", str(data), "--name", "no_inputs", uri=store)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "training stopped, nothing was registered:\nspec no_inputs declares no model input: models read "
        "the columns known at release that are not protected, and each of its columns (race, moves) is "
        "protected or known only during supervision\n"
    )
    assert MlflowClient().search_registered_models(filter_string="name='no_inputs'") == []


def test_a_need_defined_by_every_model_input_is_refused_before_any_fitting(store, tmp_path):
    """A need's model never reads its own sources: one whose rule reads every input had none left, and
    train ended in a LightGBM traceback ("Forced splits file includes feature index 0")."""
    layout = parse_spec(
        "name: one_input\nid: pid\noutcome: {column: rearrested, horizon_years: 2}\n"
        "risk_bands: {cut_points: [0.5], labels: [low, high]}\n"
        "columns:\n  - {name: age, kind: numeric, domain: d}\n"
        "needs:\n  - {name: young, all: [{column: age, op: '<', value: 25}], interventions: [mentoring]}\n"
    )
    spec, data = tmp_path / "one_input.yaml", tmp_path / "records.csv"
    spec.write_text(yaml.safe_dump(layout.model_dump(by_alias=True, exclude_none=True)))
    generate_cohort(layout, 600, seed=0).to_csv(data, index=False)
    result = cli("train", "--spec", str(spec), "--data", str(data), "--name", "one_input", uri=store)
    assert (result.returncode, result.stdout) == (2, "")
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith(
        "training stopped, nothing was registered:\nneed young is defined by every model input (age), "
        "and a need's model never reads its own sources, so it would have no input: declare another "
        "release-time column, or define the need by columns known during supervision\n"
    )
    assert MlflowClient().search_registered_models(filter_string="name='one_input'") == []


def test_too_few_of_one_outcome_stops_before_any_fitting(store, tmp_path, training_raw):
    outcome = training_raw["Recidivism_Within_3years"]
    few = pd.concat([training_raw[outcome == "No"].head(300), training_raw[outcome == "Yes"].head(3)])
    path = tmp_path / "few.csv"
    few.to_csv(path, index=False)
    result = cli("train", "--spec", "georgia_parole", "--data", str(path), "--name", "few", uri=store)
    assert result.returncode == 2
    assert (
        "Recidivism_Within_3years is 1 in 3 rows and 0 in 300; training needs at least 20 of each"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert MlflowClient().search_registered_models(filter_string="name='few'") == []


def test_a_model_name_keeps_one_spec(trained, store, data_file, spec, tmp_path):
    other = spec.model_dump(by_alias=True, exclude_none=True) | {"name": "another_layout"}
    path = tmp_path / "another.yaml"
    path.write_text(yaml.safe_dump(other))
    before = len(MlflowClient().search_model_versions("name = 'reintegra'"))
    result = cli("train", "--spec", str(path), "--data", str(data_file), "--name", "reintegra", uri=store)
    assert result.returncode == 2
    assert "model reintegra holds versions trained on spec georgia_parole" in result.stderr
    assert "register spec another_layout under another name" in result.stderr
    assert len(MlflowClient().search_model_versions("name = 'reintegra'")) == before


def test_a_spec_edited_under_its_name_is_a_new_version_and_train_says_what_changed(
    store, training_raw, spec, tmp_path
):
    """A spec keeps its name through edits, so its model takes the new version; train says how it differs
    from the newest one, and that a server serving that one takes other records until it restarts."""
    data = tmp_path / "cohort.csv"
    training_raw.iloc[:1500].to_csv(data, index=False)
    first = cli("train", "--spec", "georgia_parole", "--data", str(data), "--name", "edited", uri=store)
    assert first.returncode == 0, first.stderr
    assert "is not the one version" not in first.stderr
    edited = spec.model_dump(by_alias=True, exclude_none=True)
    edited["risk_bands"] = {"cut_points": [0.5], "labels": ["low", "high"]}
    for column in edited["columns"]:
        if column["name"] == "Prison_Years":
            column["description"] = "Years in prison, as the department counts them"
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(edited))
    second = cli("train", "--spec", str(path), "--data", str(data), "--name", "edited", uri=store)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["model_version"] == "2"
    assert (
        "warning: spec georgia_parole is not the one version 1 of edited was trained on: record fields "
        "declared otherwise: Prison_Years; risk bands low, high cut at 0.5 (were low, moderate, high, "
        "very_high cut at 0.35, 0.55, 0.75). A server serving version 1 takes records of another shape than "
        "this version, so it keeps serving that version until it restarts"
    ) in second.stderr


@pytest.mark.parametrize("bad", ["", "  ", "county/2024", "county:2024", "o'brien", 'say "hi"', ".."])
def test_a_name_the_registry_cannot_hold_is_refused_before_any_fitting(bad, store, data_file, spec):
    """MLflow refused these only at registration, after the whole fit, and left a run behind."""
    runs = len(mlflow.search_runs(search_all_experiments=True))
    with pytest.raises(ValueError, match="model name") as refused:
        train(spec, data_file, name=bad)
    assert repr(bad) in str(refused.value)
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs


def test_the_cli_refuses_a_bad_model_name_in_one_line(store, data_file):
    result = cli("train", "--spec", "georgia_parole", "--data", str(data_file), "--name", "a/b", uri=store)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("model name 'a/b' ")


def test_an_incumbent_scored_only_for_one_outcome_fails_its_gate_instead_of_stopping_training(
    store, training_raw, spec, tmp_path
):
    """Its AUC is unknown; the ROC figure used to format that None and stop the job with a TypeError."""
    partial = training_raw.copy()
    partial.loc[partial["Recidivism_Within_3years"] == "No", "Supervision_Risk_Score_First"] = ""
    path = tmp_path / "partial.csv"
    partial.to_csv(path, index=False)
    result = train(spec, path, name="partial_incumbent", seed=1)
    folder = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, dst_path=str(tmp_path / "run")))
    assert json.loads((folder / "evaluation.json").read_text())["baselines"]["incumbent"]["auc"] is None
    gates = {g["name"]: g for g in json.loads((folder / "gates.json").read_text())}
    gate = gates["auc_over_incumbent"]
    assert not gate["passed"] and "the rows with an incumbent score hold only one outcome" in gate["detail"]
    assert (folder / "roc.png").stat().st_size > 0
    assert (
        "| baseline: incumbent: Georgia supervision risk score (first) | n/a"
        in (folder / "model_card.md").read_text()
    )


NO_INPUT_SPEC = """
name: no_input
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.3, 0.6], labels: [low, medium, high]}
needs:
  - {name: job, all: [{column: jobless_6m, op: "==", value: "Yes"}], interventions: [employment program]}
columns:
  - {name: age, kind: numeric, domain: demographics, min: 16, max: 100, required: false}
  - {name: jobless_6m, kind: boolean, domain: school_work, known: supervision}
"""


# The logistic baseline, fitted on no input at all, says its matrix is singular: true, not this test's matter.
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_a_model_that_gives_everyone_the_same_risk_is_not_registered(store, tmp_path):
    """A file without the spec's (optional) inputs: the model learns one number, and the card's
    calibration slope does not exist. It used to register the version, then stop with a TypeError."""
    spec_path, data = tmp_path / "no_input.yaml", tmp_path / "no_input.csv"
    spec_path.write_text(NO_INPUT_SPEC)
    rows = pd.DataFrame({"pid": range(400)})
    rows["rearrested"] = ["Yes", "No", "No", "Yes", "No"] * 80
    rows["jobless_6m"] = ["Yes", "No", "Yes", "No"] * 100
    rows.to_csv(data, index=False)
    result = cli("train", "--spec", str(spec_path), "--data", str(data), "--name", "no_input", uri=store)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "every one of the 100 test rows gets the same risk" in result.stderr
    assert "inputs with no value in any row: age" in result.stderr
    assert MlflowClient().search_registered_models(filter_string="name='no_input'") == []


@pytest.mark.parametrize("command", ["train", "bootstrap"])
def test_a_store_mlflow_cannot_use_stops_training_in_words(command, data_file):
    """It printed a 133-line traceback; evaluate and promote already said it in one line."""
    args = ["--spec", "georgia_parole", "--data", str(data_file), "--name", "unreachable"]
    result = cli(command, *args, uri="bogus://nowhere")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot use the MLflow store bogus://nowhere (MLFLOW_TRACKING_URI): " in result.stderr
    assert "unsupported URI 'bogus://nowhere'" in result.stderr


@pytest.mark.parametrize("command", ["train", "evaluate", "score"])
def test_a_tracking_server_that_does_not_answer_is_said_in_seconds(command, data_file, tmp_path):
    """MLflow's own 7 retries of 120 s each kept either command 4 min 13 s on a refused port before it
    said so; the server already said it in seconds. Run as its own process: the limits are defaults it
    sets in its environment, which a developer's own MLFLOW_HTTP_REQUEST_* would override. evaluate and
    score said only "cannot load model models:/unreachable/1: API request to ... failed", which reads as a
    broken model; like train they now name the store and MLFLOW_TRACKING_URI, saying MLflow did not answer.
    The URI's password was printed with it: it is shown as ***, in MLflow's words too."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri, shown = f"http://analyst:s3cret@127.0.0.1:{port}", f"http://analyst:***@127.0.0.1:{port}"
    args = {
        "train": ["--spec", "georgia_parole", "--data", str(data_file), "--name", "unreachable"],
        "evaluate": ["--model", "models:/unreachable/1", "--data", str(data_file)],
        "score": [
            "--model",
            "models:/unreachable/1",
            "--data",
            str(data_file),
            "--out",
            str(tmp_path / "s.jsonl"),
        ],
    }[command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST_")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "training", command, *args],
        capture_output=True,
        text=True,
        env={**env, "MLFLOW_TRACKING_URI": uri},
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{shown}/api/2.0/mlflow/" in result.stderr, "MLflow's own words, naming the server"
    assert f"{shown} (MLFLOW_TRACKING_URI)" in result.stderr
    assert "s3cret" not in result.stderr
    assert time.monotonic() - started < 60


def test_a_deleted_experiment_stops_training_before_any_fitting(data_file, tmp_path):
    """Deleting it in the MLflow UI used to cost a whole fit, then an MLflow traceback."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("reintegra")
    client.delete_experiment(experiment)
    result = cli("train", "--spec", "georgia_parole", "--data", str(data_file), "--name", "x", uri=uri)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        f"experiment reintegra is deleted in this MLflow store; restore it (mlflow experiments restore "
        f"--experiment-id {experiment}) or purge it (mlflow gc --experiment-ids {experiment})"
        in result.stderr
    )
    assert client.search_runs([experiment], run_view_type=mlflow.entities.ViewType.ALL) == []


@pytest.mark.parametrize(
    ("seed", "bound"),
    [("-1", "greater than or equal to 0"), ("4294967296", "less than or equal to 4294967295")],
)
def test_a_seed_numpy_cannot_take_is_refused_as_the_seed(seed, bound, store, data_file):
    """It was refused only after the file was read, in words about train_test_split's random_state."""
    result = cli("train", "--spec", "georgia_parole", "--data", str(data_file), "--seed", seed, uri=store)
    assert result.returncode == 2
    assert "random_state" not in result.stderr
    assert "Invalid value for '--seed'" in result.stderr and bound in result.stderr


def test_train_cli_prints_one_json_object(store, data_file):
    result = cli("train", "--spec", "georgia_parole", "--data", str(data_file), "--name", "cli", uri=store)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == {"run_id", "model_name", "model_version", "metrics"}
    assert summary["model_name"] == "cli" and summary["model_version"] == "1"
    assert pd.notna(summary["metrics"]["test_risk_auc"])


def test_the_card_names_the_rows_and_groups_the_audit_leaves_out(trained, tmp_path):
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="evaluation.json", dst_path=str(tmp_path)
    )
    evaluation = json.loads(Path(path).read_text())
    race = evaluation["fairness"]["Race"]
    race |= {"n_missing": 7, "left_out": {"fpr": ["OTHER"], "ece": ["OTHER"]}}
    race["groups"]["OTHER"] = race["groups"]["WHITE"] | {"n": 12, "fpr": 0.99}
    card = model_card(trained.bundle, evaluation, [], "cohort.csv", "reintegra", "1", trained.run_id)
    most, least = sorted(("BLACK", "WHITE"), key=lambda group: race["groups"][group]["fpr"], reverse=True)
    assert f"People of group {most} who did not have the outcome are flagged" in card
    assert f"than those of group {least}:" in card
    assert f"7 of the {evaluation['n']} test rows have no Race value: they are in no group" in card
    assert (
        "Gaps compare groups with at least 30 people in the rate's denominator; left out:\n"
        "OTHER (FPR); OTHER (ECE)." in card
    )


@pytest.mark.parametrize("command", ["train", "bootstrap"])
def test_a_spec_folder_is_refused_in_words(command, store, tmp_path):
    result = cli(command, "--spec", str(tmp_path), "--data", "x.csv", "--name", "no-champion-yet", uri=store)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"spec {tmp_path} is a folder; give a built-in spec name (georgia_parole) or the path" in (
        result.stderr
    )


def test_bootstrap_says_it_promotes_a_failing_first_model_anyway(store, data_file, strict_spec):
    """It used to print promote's advice to use --force --reason, then do exactly that itself."""
    args = ["--spec", str(strict_spec), "--data", str(data_file), "--name", "first"]
    result = cli("bootstrap", *args, uri=store)
    assert result.returncode == 0, result.stderr
    assert "--force" not in result.stderr
    assert (
        "first version 1 fails 1 gate(s); as a development bootstrap it is promoted anyway, with the "
        "failed gates recorded as the reason:\n  calibration: ECE" in result.stderr
    )
    assert json.loads(result.stdout)["forced"] is True


def test_bootstrap_reads_its_spec_even_when_a_champion_exists(trained, store, tmp_path):
    """`make run` calls bootstrap every time: a bad --spec must be said then, not only on a new store."""
    client = MlflowClient()
    client.create_registered_model("has-champion")
    version = client.create_model_version("has-champion", f"runs:/{trained.run_id}/model", trained.run_id)
    client.set_registered_model_alias("has-champion", "champion", version.version)
    missing = tmp_path / "missing.yaml"
    result = cli("bootstrap", "--spec", str(missing), "--data", "x.csv", "--name", "has-champion", uri=store)
    assert result.returncode == 2, result.stderr
    assert f"spec file {missing} does not exist" in result.stderr
    fine = cli(
        "bootstrap", "--spec", "georgia_parole", "--data", "x.csv", "--name", "has-champion", uri=store
    )
    assert fine.returncode == 0 and "has-champion@champion is version 1; nothing to do" in fine.stderr


def test_group_intervals_reach_the_json_the_csv_and_the_card(trained, tmp_path):
    folder = Path(mlflow.artifacts.download_artifacts(run_id=trained.run_id, dst_path=str(tmp_path)))
    race = json.loads((folder / "evaluation.json").read_text())["fairness"]["Race"]
    assert json.loads((folder / "fairness.json").read_text())["Race"]["intervals"] == race["intervals"]
    intervals = race["intervals"]
    assert (intervals["resamples"], intervals["stratified_by"]) == (1000, "group")
    csv = pd.read_csv(folder / "fairness.csv").set_index("group")
    card = (folder / "model_card.md").read_text()
    for group, row in race["groups"].items():
        bounds = intervals["groups"][group]
        assert csv.loc[group, "fpr_low"] == pytest.approx(bounds["fpr"][0])
        assert csv.loc[group, "auc_high"] == pytest.approx(bounds["auc"][1])
        assert csv.loc[group, "fpr"] == pytest.approx(row["fpr"])  # the point estimate stays
        shown = " | ".join(
            f"{bounds[r][0]:.3f}-{bounds[r][1]:.3f}" for r in ("base_rate", "auc", "fpr", "fnr")
        )
        assert f"| {group} | {shown} |" in card, group
    high, low = intervals["fpr_gap_groups"]
    gap = intervals["fpr_gap"]
    assert f"FPR of {high} minus FPR of {low}, resampled within groups: {gap[0]:.4f} to {gap[1]:.4f}" in card
    assert "intervals, 1000 resamples, each group resampled within itself at its own size):" in card


def test_rates_resting_on_few_people_are_warned_of_in_the_json_and_the_card(
    trained, store, data_file, tmp_path
):
    folder = Path(mlflow.artifacts.download_artifacts(run_id=trained.run_id, dst_path=str(tmp_path)))
    race = json.loads((folder / "evaluation.json").read_text())["fairness"]["Race"]
    card = (folder / "model_card.md").read_text()
    assert race["small_groups"], "about 500 people a group in the synthetic test part: +-0.05 is not reached"
    assert "Too few people for these rates to mean much:\n" in card
    for warning in race["small_groups"]:
        assert f"- {warning['message']}\n" in card
    result = cli("evaluate", "--model", "models:/reintegra@candidate", "--data", str(data_file), uri=store)
    assert "small_groups" in json.loads(result.stdout)["fairness"]["Race"]


def test_plots_json_holds_the_numbers_each_plot_shows(trained, spec, training_typed, tmp_path):
    """Checked against the test part scored again and numpy, and against the run's other artifacts."""
    folder = Path(mlflow.artifacts.download_artifacts(run_id=trained.run_id, dst_path=str(tmp_path)))
    drawn = json.loads((folder / "plots.json").read_text())
    evaluation = json.loads((folder / "evaluation.json").read_text())
    typed = training_typed
    y = outcome(typed, spec)
    _, held_out = train_test_split(np.arange(len(y)), test_size=TEST_SIZE, stratify=y, random_state=3)
    risk = trained.bundle.predict_frame(typed.iloc[held_out])["risk"].to_numpy()
    truth = y[held_out]
    which = np.minimum(np.floor(risk * 10), 9)
    bins = [
        {
            "mean_predicted": risk[which == b].mean(),
            "observed": truth[which == b].mean(),
            "n": (which == b).sum(),
        }
        for b in range(10)
        if (which == b).any()
    ]
    assert len(drawn["calibration.png"]["bins"]) == len(bins)
    for got, expected in zip(drawn["calibration.png"]["bins"], bins, strict=True):
        assert got == pytest.approx(expected, abs=1e-12)
    curves = {c["name"]: c for c in drawn["roc.png"]["curves"]}
    assert curves["this model"]["auc"] == pytest.approx(evaluation["risk"]["auc"])
    assert curves["this model"]["rows"] == drawn["roc.png"]["rows"] == evaluation["n"]
    importance = pd.read_csv(folder / "domain_importance.csv", index_col="domain")[
        "mean_abs_domain_contribution"
    ]
    assert [(d["name"], d["mean_abs_contribution"]) for d in drawn["domain_importance.png"]["domains"]] == [
        (name, pytest.approx(value)) for name, value in importance.items()
    ]
    X = trained.bundle.encode(typed.iloc[held_out])
    _, contributions = trained.bundle.risk.explain(X)
    size = pd.Series(np.abs(contributions).mean(axis=0), index=X.columns).sort_values(ascending=False)
    assert drawn["shap_summary.png"]["of"] == X.shape[1]
    assert [(i["name"], i["mean_abs_contribution"]) for i in drawn["shap_summary.png"]["inputs"]] == [
        (name, pytest.approx(value)) for name, value in size.iloc[:15].items()
    ]


def test_band_shares_reach_the_json_and_the_card(trained, tmp_path):
    folder = Path(mlflow.artifacts.download_artifacts(run_id=trained.run_id, dst_path=str(tmp_path)))
    race = json.loads((folder / "evaluation.json").read_text())["fairness"]["Race"]
    card = (folder / "model_card.md").read_text()
    for band, cells in race["bands"].items():
        for group, cell in cells.items():
            share = race["band_shares"][band][group]
            assert share == pytest.approx(cell["n"] / race["groups"][group]["n"])
            assert f"| {band} | {group} | {cell['n']} | " in card and f" | {share:.3f} |\n" in card


def test_the_card_says_which_fairness_numbers_no_gate_reads(trained, tmp_path):
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="model_card.md", dst_path=str(tmp_path)
    )
    card = Path(path).read_text()
    assert (
        "Of the fairness numbers above, the gates check only the Race FPR gap: no gate reads\n"
        "the FNR and ECE gaps, per-group AUC, the within-band gap, the band shares or the intervals, so a "
        "reviewer weighs them here." in card
    )


def test_no_two_tables_under_one_heading_of_the_card_share_their_first_column(trained, tmp_path):
    """The model page names each card table by its heading and first column, for a screen reader's
    list of regions: the group intervals once repeated the audit table's 'Race, by group'."""
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="model_card.md", dst_path=str(tmp_path)
    )
    heading, names = "", []
    lines = Path(path).read_text().splitlines()
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("#"):
            heading = line
        elif line.startswith("|") and following.startswith("| ---"):
            names.append((heading, line.split("|")[1].strip()))
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["train", "--help"],
        ["train", "--spec", "georgia_parole", "--data", "x.csv", "--seed", "-1"],
        ["train", "--spec", "georgia_parole", "--data", "x.csv", "--name", "county:2024"],
        ["train", "--spec", "no_such_spec", "--data", "x.csv"],
    ],
    ids=["help", "train-help", "refused-seed", "refused-name", "unknown-spec"],
)
def test_help_and_a_refused_option_are_answered_before_mlflow_is_imported(tmp_path, args):
    """MLflow and the models take seconds to import: `python -m training --help` and a refused seed waited
    3.5 s on them, and a refused model name or an unknown spec 5.6 s."""
    code, imported = modules_imported("training", *args, folder=tmp_path)
    assert "training.cli" in imported
    assert not {"mlflow", "sklearn", "lightgbm"} & imported
    assert code == (0 if "--help" in args else 2)


PUNCTUATED_SPEC = """
name: punctuated
id: "Person ID"
outcome: {column: "Re-offended (2y)", horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
needs:
  - {name: job, all: [{column: "Employed?", op: "==", value: "No"}], interventions: [employment program]}
columns:
  - {name: "Age, years", kind: numeric, domain: demographics}
  - {name: "Score [0-10]: LSI {v2}", kind: numeric, domain: criminal_history, min: 0, max: 10}
  - {name: "Prior arrests", kind: ordinal, domain: criminal_history, order: ["0", "1", "2+"]}
  - {name: "Employed?", kind: boolean, domain: school_work}
"""


def test_a_layout_whose_headers_hold_commas_or_brackets_trains_and_evaluates(store, tmp_path):
    """LightGBM refuses , : [ ] { } in a feature name: train stopped with its fatal error and a
    traceback on a header such as "Age, years", which the spec format allows."""
    spec_path, data = tmp_path / "punctuated.yaml", tmp_path / "punctuated.csv"
    spec_path.write_text(PUNCTUATED_SPEC)
    generate_cohort(parse_spec(PUNCTUATED_SPEC), 1200, seed=1).to_csv(data, index=False)
    trained = cli("train", "--spec", str(spec_path), "--data", str(data), "--name", "punctuated", uri=store)
    assert trained.returncode == 0, trained.stderr
    evaluated = cli("evaluate", "--model", "models:/punctuated@candidate", "--data", str(data), uri=store)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["risk"]["auc"] > 0.6


def test_make_train_takes_paths_with_spaces(store, free_text_spec, free_text_raw, tmp_path):
    """`make train DATA="my records/cohort 2024.csv"` split the path at its space: train stopped with
    'Got unexpected extra argument(s)' and make with Error 2."""
    folder = tmp_path / "my records"
    folder.mkdir()
    data, spec_file = folder / "cohort 2024.csv", folder / "free text.yaml"
    free_text_raw.to_csv(data, index=False)
    spec_file.write_text(yaml.safe_dump(free_text_spec.model_dump(by_alias=True, exclude_none=True)))
    result = subprocess.run(
        ["make", "--no-print-directory", "train", f"DATA={data}", f"SPEC={spec_file}", "MODEL_NAME=spaced"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "MLFLOW_TRACKING_URI": store},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed = json.loads(result.stdout[result.stdout.index("{") :])
    assert (printed["model_name"], printed["model_version"]) == ("spaced", "1")
