"""Model behaviour: exact explanations, no leakage, invariance to protected attributes."""

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import shap

from features.needs import need_labels
from features.spec import DatasetSpec
from models.bundle import ScoringBundle
from models.calibrated import sigmoid

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def records(training_raw):
    return training_raw.iloc[3000:3200].to_dict("records")


@pytest.fixture(scope="module")
def scored(bundle, records):
    return bundle.score_records(records)


def _identity_error(explanation: dict) -> float:
    total = explanation["base_value"] + sum(c["contribution"] for c in explanation["contributions"])
    return abs(total - explanation["log_odds"])


def test_risk_contributions_add_up_to_the_calibrated_log_odds(bundle, records, scored):
    X = bundle.encode(pd.DataFrame(records))
    log_odds = bundle.risk.decision_function(X)
    for result, expected in zip(scored, log_odds, strict=True):
        explanation = result["explanation"]["risk"]
        assert _identity_error(explanation) < 1e-6
        assert explanation["log_odds"] == pytest.approx(expected, abs=1e-6)
        assert result["risk"]["probability"] == pytest.approx(sigmoid(expected), abs=1e-9)


def test_every_need_explanation_adds_up(bundle, records, scored):
    X = bundle.encode(pd.DataFrame(records))
    for need, model in bundle.needs.items():
        log_odds = model.decision_function(X)
        for result, expected in zip(scored, log_odds, strict=True):
            explanation = result["explanation"]["needs"][need]
            assert _identity_error(explanation) < 1e-6
            assert explanation["log_odds"] == pytest.approx(expected, abs=1e-6)


def test_every_contribution_names_its_input_value_and_domain(bundle, spec, records, scored):
    """For risk and each need: the model's own inputs, largest first, with the record's values."""
    domains = spec.domains()
    models = {"risk": bundle.risk, **bundle.needs}
    for record, result in zip(records[:20], scored[:20], strict=True):
        explanations = {"risk": result["explanation"]["risk"], **result["explanation"]["needs"]}
        for output, explanation in explanations.items():
            items = explanation["contributions"]
            assert sorted(i["input"] for i in items) == sorted(models[output].feature_names_in_)
            sizes = [abs(i["contribution"]) for i in items]
            assert sizes == sorted(sizes, reverse=True)
            by_domain: dict[str, float] = {}
            for item in items:
                assert item["domain"] == domains[item["input"]]
                if item["input"] in record:
                    given = record[item["input"]]
                    assert item["value"] == (None if pd.isna(given) else given)
                elif item["input"] == "Prior_Arrests_Total":  # a derived input shows the number it is
                    arrests = ("Prior_Arrest_Episodes_Felony", "Prior_Arrest_Episodes_Misd")
                    assert item["value"] == sum(spec.column(c).order.index(record[c]) for c in arrests)
                by_domain[item["domain"]] = by_domain.get(item["domain"], 0) + item["contribution"]
            assert explanation["by_domain"] == pytest.approx(by_domain, abs=1e-12)
            domain_sizes = [abs(v) for v in explanation["by_domain"].values()]
            assert domain_sizes == sorted(domain_sizes, reverse=True)


def test_each_contribution_is_tree_shap_of_its_own_input_scaled_by_the_platt_map(bundle, records, scored):
    """Recomputed with shap's TreeExplainer and matched by input name: the identity alone would
    still hold with each contribution shown beside the wrong input."""
    X = bundle.encode(pd.DataFrame(records[:40]))
    models = {"risk": bundle.risk, **bundle.needs}
    for output, model in models.items():
        inputs = list(model.feature_names_in_)
        values = shap.TreeExplainer(model.booster_)(X[inputs].to_numpy(dtype=float)).values
        for row, result in zip(values, scored[:40], strict=True):
            explanations = {"risk": result["explanation"]["risk"], **result["explanation"]["needs"]}
            explanation = explanations[output]
            given = {c["input"]: c["contribution"] for c in explanation["contributions"]}
            expected = dict(zip(inputs, model.slope_ * row, strict=True))
            assert given.keys() == expected.keys()
            for name in inputs:
                assert given[name] == pytest.approx(expected[name], abs=1e-6), (output, name)


def test_risk_model_sees_no_supervision_or_protected_input(bundle, spec):
    derived = {d.name for d in spec.derived}
    for name in bundle.risk.feature_names_in_:
        if name not in derived:
            assert spec.column(name).known == "release"
            assert name not in spec.protected


def test_no_need_model_sees_its_own_sources(bundle, spec):
    for need in spec.needs:
        inputs = set(bundle.needs[need.name].feature_names_in_)
        assert not inputs & set(need.sources)
        assert "Race" not in inputs
    assert "Condition_MH_SA" not in bundle.needs["treatment"].feature_names_in_


def test_changing_race_or_supervision_facts_changes_nothing(bundle, records, scored):
    changed = [
        {**r, "Race": "WHITE" if r["Race"] == "BLACK" else "BLACK", "Percent_Days_Employed": "0.99"}
        for r in records
    ]
    for before, after in zip(scored, bundle.score_records(changed), strict=True):
        assert after["risk"] == before["risk"]
        assert after["needs"] == before["needs"]


def test_needs_carry_their_interventions_and_flags(bundle, spec, scored):
    needs = scored[0]["needs"]
    assert [n["need"] for n in needs] == [n.name for n in spec.needs]
    for item in needs:
        assert item["interventions"] == spec.need(item["need"]).interventions
        if item["observed"] is None:
            assert item["flagged"] == (item["probability"] >= spec.need(item["need"]).flag_threshold)
        else:
            assert item["flagged"] == item["observed"]


def test_need_flags_of_many_records_are_those_their_scores_give(bundle, training_typed, scored):
    """The reference profile's flag rates count flags as served scores give them, observed ones included."""
    typed = training_typed.iloc[3000:3200]
    flags = bundle.need_flags(typed, bundle.predict_frame(typed))
    assert list(flags.columns) == [n.name for n in bundle.spec.needs]
    assert flags.to_dict("records") == [{n["need"]: n["flagged"] for n in s["needs"]} for s in scored]


def test_a_need_the_record_shows_is_observed_as_its_rule_labels_it(
    bundle, spec, training_raw, training_typed
):
    """Georgia's treatment and education needs are parole conditions set at release: the record says
    whether they hold, exactly as the training labels do; needs known only later are never observed."""
    rows = training_raw.iloc[3000:3400].copy()
    rows.iloc[::7, rows.columns.get_loc("Condition_MH_SA")] = None
    labels = need_labels(
        training_typed.loc[rows.index].assign(
            Condition_MH_SA=rows["Condition_MH_SA"].map(
                {"Yes": True, "No": False, "TRUE": True, "FALSE": False, True: True, False: False}
            )
        ),
        spec,
    )
    results = bundle.score_records(rows.to_dict("records"))
    for (_, label), result in zip(labels.iterrows(), results, strict=True):
        observed = {item["need"]: item["observed"] for item in result["needs"]}
        assert {need for need, value in observed.items() if value is not None} <= {"treatment", "education"}
        for need in ("treatment", "education"):
            expected = None if np.isnan(label[need]) else bool(label[need])
            assert observed[need] == expected
    shown = [r for r in results if r["needs"][3]["observed"] and r["needs"][3]["probability"] < 0.5]
    assert shown and all(r["needs"][3]["flagged"] for r in shown)  # the record outranks the model
    assert any(r["needs"][3]["observed"] is None for r in results)


def _with_flag_thresholds(bundle: ScoringBundle, thresholds: dict[str, float]) -> ScoringBundle:
    """The same fitted models under a spec whose needs are flagged at `thresholds`."""
    data = bundle.spec.model_dump(by_alias=True, exclude_none=True)
    for need in data["needs"]:
        need["flag_threshold"] = thresholds[need["name"]]
    return replace(bundle, spec=DatasetSpec.model_validate(data))


def test_needs_are_flagged_at_their_own_threshold(bundle, records):
    lowered = _with_flag_thresholds(bundle, dict.fromkeys(bundle.needs, 0.2))
    decided_by_the_threshold = 0
    for result in lowered.score_records(records):
        for item in (i for i in result["needs"] if i["observed"] is None):
            assert item["flagged"] == (item["probability"] >= 0.2)
            decided_by_the_threshold += 0.2 <= item["probability"] < 0.5
    assert decided_by_the_threshold > 0  # flagged here, not at the default 0.5


def test_a_need_probability_equal_to_its_threshold_is_flagged(bundle, records, scored):
    at = {item["need"]: item["probability"] for item in scored[0]["needs"]}
    [result] = _with_flag_thresholds(bundle, at).score_records(records[:1])
    for item in result["needs"]:
        assert item["probability"] == at[item["need"]]
        assert item["flagged"] == (True if item["observed"] is None else item["observed"]), item


def _expected_band(probability: float) -> str:
    """The built-in bands: low < 0.35 <= moderate < 0.55 <= high < 0.75 <= very_high."""
    if probability < 0.35:
        return "low"
    if probability < 0.55:
        return "moderate"
    return "high" if probability < 0.75 else "very_high"


def test_band_follows_the_cut_points(bundle, scored):
    assert bundle.spec.risk_bands.cut_points == [0.35, 0.55, 0.75]
    bands = [result["risk"]["band"] for result in scored]
    assert bands == [_expected_band(result["risk"]["probability"]) for result in scored]
    assert set(bands) == {"low", "moderate", "high", "very_high"}


def test_more_felony_arrests_raise_risk_on_average(bundle, records):
    def mean_risk(level: str) -> float:
        frame = pd.DataFrame([{**r, "Prior_Arrest_Episodes_Felony": level} for r in records])
        return float(bundle.predict_frame(frame)["risk"].mean())

    assert mean_risk("10 or more") > mean_risk("0")


def test_batch_and_single_scores_agree(bundle, records, scored):
    frame = bundle.predict_frame(pd.DataFrame(records))
    np.testing.assert_allclose(frame["risk"], [r["risk"]["probability"] for r in scored], atol=1e-12)


def test_a_bundle_pickled_before_a_spec_key_existed_loads_with_its_default(bundle, records):
    """Registered versions outlive releases: a key added to the spec since must not break them."""
    old = replace(bundle, spec=bundle.spec.model_copy(deep=True))
    del old.spec.gates.__dict__["min_group_size"]  # as an older release pickled it
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.spec.gates.min_group_size == 30
    assert loaded.score_records(records[:3]) == bundle.score_records(records[:3])


def test_an_input_every_training_record_gave_is_warned_of_when_left_out(bundle, records):
    """A record without its felony arrests was scored as if that were known, silently: no training record
    lacked them, so the models never learned what their absence means."""
    full = next(r for r in records if all(pd.notna(r[name]) for name in bundle.spec.inputs()))
    without = {k: v for k, v in full.items() if k != "Prior_Arrest_Episodes_Felony"}
    blank = {**full, "Prior_Arrest_Episodes_Felony": " ", "Prior_Arrest_Episodes_Drug": None}
    lacked_in_training = {**full, "Gang_Affiliated": None}
    plain, one, two, usual = bundle.score_records([full, without, blank, lacked_in_training])
    assert one["warnings"] == [
        "Input Prior_Arrest_Episodes_Felony is left out, though every training record gave it: the model "
        "never learned what its absence means, so this score could differ much from one with it given; send "
        "it if it is known"
    ]
    assert two["warnings"] == [
        "Inputs Prior_Arrest_Episodes_Felony and Prior_Arrest_Episodes_Drug are left out, though every "
        "training record gave them: the model never learned what their absence means, so this score could "
        "differ much from one with them given; send them if they are known"
    ]
    assert "warnings" not in plain and "warnings" not in usual
    frame = pd.DataFrame([full, without, blank, lacked_in_training])
    assert bundle.unlearned_inputs(frame)["left_out_inputs"] == {
        "Prior_Arrest_Episodes_Felony": 2,
        "Prior_Arrest_Episodes_Drug": 1,
    }


def test_a_bundle_whose_encoder_predates_always_given_scores_without_that_warning(bundle, records):
    """Registered versions outlive releases: one fitted before encoders recorded it still scores."""
    old = replace(bundle, encoder=pickle.loads(pickle.dumps(bundle.encoder)))
    del old.encoder.always_given_
    loaded = pickle.loads(pickle.dumps(old))
    without = {k: v for k, v in records[0].items() if k != "Prior_Arrest_Episodes_Felony"}
    [scored] = loaded.score_records([without])
    assert "warnings" not in scored
    assert scored["risk"] == bundle.score_records([without])[0]["risk"]
    # A frame of records has every column: a left-out input is an empty cell there.
    frame = pd.DataFrame([{**records[0], "Prior_Arrest_Episodes_Felony": None}])
    assert loaded.unlearned_inputs(frame)["left_out_inputs"] == {}


def _fitted(raw: pd.DataFrame, spec: DatasetSpec) -> ScoringBundle:
    """A bundle fitted on `raw` (valid records of `spec`), as training fits one."""
    from features.validation import validate_records
    from training.fit import fit_bundle

    typed, report = validate_records(raw, spec)
    assert report.ok, report.lines()
    return fit_bundle(typed, spec, seed=1)


@pytest.fixture(scope="module")
def free_text_bundle(free_text_spec, free_text_raw):
    return _fitted(free_text_raw, free_text_spec)


def test_a_declared_value_no_training_record_held_is_warned_of(free_text_spec, free_text_raw):
    """offence 'other' is allowed by the spec; with no such training record, its code falls wherever the
    trees' thresholds put it, and the score said nothing."""
    bundle = _fitted(free_text_raw[free_text_raw["offence"] != "other"], free_text_spec)
    seen = {"age": 30.0, "employed": True, "offence": "violent", "employer": "value_1"}
    plain, other = bundle.score_records([seen, {**seen, "offence": "Other "}])
    assert "warnings" not in plain
    assert other["warnings"] == [
        "Input offence has value 'Other ', which no training record had: the model never learned what it "
        "means"
    ]
    frame = pd.DataFrame(
        [seen, {**seen, "offence": "other"}, {**seen, "offence": "other"}, {**seen, "offence": None}]
    )
    assert bundle.unlearned_inputs(frame)["unseen_values"] == {
        "offence": {"rows": 2, "distinct": 1, "most_common": {"other": 2}}
    }


def test_a_number_beyond_every_training_records_is_read_as_the_ranges_end_and_said_so(
    free_text_spec, free_text_raw
):
    """The spec allows ages 16-100; trained on 20-60, the trees split on 80 as on 60, and said nothing."""
    bundle = _fitted(free_text_raw[free_text_raw["age"].astype(float).between(20, 60)], free_text_spec)
    low, high = bundle.encoder.numeric_ranges_["age"]
    seen = {"age": 40.0, "employed": True, "offence": "violent", "employer": "value_1"}
    plain, old, at_end, young = bundle.score_records(
        [seen, {**seen, "age": 80.0}, {**seen, "age": high}, {**seen, "age": 17.0}]
    )
    assert "warnings" not in plain and "warnings" not in at_end
    assert old["warnings"] == [
        f"Input age has value 80, above every training record's (at most {high:g}): the trees split on it "
        f"as on {high:g}"
    ]
    assert old["risk"] == at_end["risk"]
    assert young["warnings"][0].startswith(
        f"Input age has value 17, below every training record's (at least {low:g})"
    )
    frame = pd.DataFrame([seen, {**seen, "age": 80.0}, {**seen, "age": 90.0}, {**seen, "age": 17.0}])
    assert bundle.unlearned_inputs(frame)["beyond_training_range"] == {"age": {"below": 1, "above": 2}}


def test_an_unseen_free_text_value_is_said_not_silently_missing(free_text_bundle):
    seen = {"age": 30.0, "employed": True, "offence": "violent", "employer": "value_1"}
    unseen, left_out = {**seen, "employer": "Acme Ltd"}, {k: v for k, v in seen.items() if k != "employer"}
    [plain, flagged, missing] = free_text_bundle.score_records([seen, unseen, left_out])
    assert flagged["warnings"] == [
        "Input employer has value 'Acme Ltd', not seen in training: it counts as missing, as if the record "
        "had left it out"
    ]
    for explained in [flagged["explanation"]["risk"], *flagged["explanation"]["needs"].values()]:
        marked = {c["input"]: c["unseen"] for c in explained["contributions"] if "unseen" in c}
        assert marked == {"employer": True}
    assert flagged["risk"] == missing["risk"], "it is read exactly as a value left out"
    assert "warnings" not in plain
    assert [w.split(",")[0] for w in missing["warnings"]] == ["Input employer is left out"]
    for result in (plain, missing):
        contributions = [c for e in result["explanation"]["needs"].values() for c in e["contributions"]]
        assert all("unseen" not in c for c in result["explanation"]["risk"]["contributions"] + contributions)
