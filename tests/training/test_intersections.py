"""Intersectional groups: the audit by two protected attributes at once, checked by hand with pandas."""

from dataclasses import replace

import pandas as pd
import pytest

from features.spec import DatasetSpec
from training.evaluate import evaluate_bundle
from training.fit import outcome
from training.intersections import intersections
from training.train import model_card

pytestmark = pytest.mark.slow


def test_each_pair_of_attributes_is_one_attribute_and_a_row_missing_either_is_in_no_group():
    typed = pd.DataFrame({"Race": ["BLACK", "WHITE", None, "WHITE"], "Gender": ["F", "M", "M", None]})
    (name, groups), *rest = intersections(typed, ["Race", "Gender"]).items()
    assert rest == [] and name == "Race x Gender"
    assert groups.tolist() == ["BLACK / F", "WHITE / M", None, None]
    assert intersections(typed, ["Race"]) == {} and intersections(typed, ["Race", "Absent"]) == {}


@pytest.fixture(scope="module")
def audited(bundle, training_typed):
    """The bundle evaluated under a spec that protects Gender as well as Race."""
    data = bundle.spec.model_dump(by_alias=True, exclude_none=True)
    data["protected"] = ["Race", "Gender"]
    rows = training_typed.iloc[3000:]
    both = replace(bundle, spec=DatasetSpec.model_validate(data))
    return both, rows, evaluate_bundle(both, rows)


def test_the_intersection_table_equals_a_groupby_by_hand(audited):
    both, rows, report = audited
    table = report["intersections"]["Race x Gender"]
    y = outcome(rows, both.spec)
    risk = both.predict_frame(rows)["risk"].to_numpy()
    frame = rows.assign(y=y, flagged=risk >= 0.5)
    by_hand = {
        f"{race} / {gender}": part
        for (race, gender), part in frame.groupby(["Race", "Gender"], observed=True)
    }
    assert set(table["groups"]) == set(by_hand) and len(by_hand) == 4
    for group, part in by_hand.items():
        row = table["groups"][group]
        assert row["n"] == len(part)
        assert row["fpr"] == pytest.approx(part.loc[part.y == 0, "flagged"].mean())
        assert row["fnr"] == pytest.approx(1 - part.loc[part.y == 1, "flagged"].mean())
        assert table["intervals"]["groups"][group]["fpr"][0] <= row["fpr"]
    fprs = {g: row["fpr"] for g, row in table["groups"].items() if g not in table["left_out"].get("fpr", [])}
    assert table["fpr_gap"] == pytest.approx(max(fprs.values()) - min(fprs.values()))
    assert set(report["fairness"]) == {"Race", "Gender"}  # each attribute alone stays as it was


def test_the_card_has_a_table_of_the_intersectional_groups(audited):
    both, _, report = audited
    both = replace(
        both,
        metadata={"data_sha256": "0" * 64, "trained_at": "t", "seed": 5, "n_train": 3000, "n_test": 1000},
    )
    card = model_card(both, report, [], "cohort.csv", "reintegra", "1", "run")
    table = report["intersections"]["Race x Gender"]
    assert "### Race x Gender (intersectional groups)" in card
    for group, row in table["groups"].items():
        low, high = table["intervals"]["groups"][group]["fpr"]
        fpr = f"{row['fpr']:.3f} ({low:.3f}-{high:.3f})"
        assert (
            f"| {group} | {row['n']} | {row['base_rate']:.3f} | {row['mean_predicted']:.3f} | {fpr} |" in card
        )
    for warning in table["small_groups"]:
        assert f"- {warning['message']}\n" in card


def test_a_spec_with_one_protected_attribute_has_no_intersections(bundle, training_typed):
    assert evaluate_bundle(bundle, training_typed.iloc[3000:3400])["intersections"] == {}
