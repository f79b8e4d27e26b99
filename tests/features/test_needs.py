from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.encoder import RecordEncoder
from features.needs import need_labels, observed_rules
from features.spec import load_spec, parse_spec
from features.validation import validate_records

EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "docs/examples/county_probation.yaml"


@pytest.fixture(scope="module")
def other_spec():
    return load_spec(EXAMPLE_SPEC)


def _typed(spec, **columns):
    """One-row-per-value records with only the given columns set (others missing)."""
    n = len(next(iter(columns.values())))
    raw = pd.DataFrame({c.name: [pd.NA] * n for c in spec.columns}, dtype="str")
    for name, values in columns.items():
        raw[name] = pd.Series(values, dtype="str")
    raw[spec.id] = [str(i) for i in range(n)]
    raw[spec.outcome.column] = "No"
    typed, report = validate_records(raw, spec)
    assert report.ok, report.lines()
    return typed


def _labels(spec, need, **columns):
    return need_labels(_typed(spec, **columns), spec)[need].tolist()


def _same(left, right):
    return np.array_equal(np.array(left, dtype=float), np.array(right, dtype=float), equal_nan=True)


def test_employment_needs_low_employment_and_no_exemption(spec):
    labels = _labels(
        spec,
        "employment",
        Percent_Days_Employed=["0.2", "0.8", "0.2", None, None, "0.5"],
        Employment_Exempt=["No", "No", "Yes", "Yes", "No", "No"],
    )
    assert _same(labels, [1, 0, 0, 0, np.nan, 0]), "exactly half the days employed is not below half"


def test_housing_counts_top_coded_levels(spec):
    labels = _labels(spec, "housing", Residence_Changes=["0", "1", "2", "3 or more", None])
    assert _same(labels, [0, 0, 1, 1, np.nan])


def test_substance_use_is_any_positive_test_and_missing_without_tests(spec):
    labels = _labels(
        spec,
        "substance_use",
        DrugTests_THC_Positive=["0", "0", None, None],
        DrugTests_Cocaine_Positive=["0", "0.1", None, "0"],
        DrugTests_Meth_Positive=["0", "0", "0.5", "0"],
        DrugTests_Other_Positive=["0", "0", None, None],
    )
    assert _same(labels, [0, 1, 1, np.nan])


def test_compliance_is_any_violation_or_absence(spec):
    no = ["No", "No", "No"]
    labels = _labels(
        spec,
        "compliance",
        Violations_ElectronicMonitoring=no,
        Violations_Instruction=["No", "Yes", "No"],
        Violations_FailToReport=no,
        Violations_MoveWithoutPermission=no,
        Program_UnexcusedAbsences=["0", "0", "1"],
    )
    assert _same(labels, [0, 1, 1])


def test_condition_needs_follow_their_flags(spec):
    assert _same(_labels(spec, "treatment", Condition_MH_SA=["Yes", "No", None]), [1, 0, np.nan])
    assert _same(_labels(spec, "education", Condition_Cog_Ed=["no", "YES"]), [0, 1])


def test_prevalences_on_the_real_data(spec, real_data_path):
    from features.records import read_records

    typed, _ = validate_records(read_records(real_data_path), spec)
    prevalence = need_labels(typed, spec).mean()
    assert prevalence.min() > 0.2 and prevalence.max() < 0.8


def test_an_ordinal_rule_may_name_a_level(other_spec):
    """`missed_tests_6m >= "1"` compares positions in the declared order, not text."""
    labels = _labels(
        other_spec,
        "substance_use",
        missed_tests_6m=["0", "1", "2 or more", "0"],
        positive_tests_6m=["0", "0", "0", None],
    )
    assert _same(labels, [0, 1, 1, np.nan])


@pytest.mark.parametrize("combinator", ["any", "all"])
def test_a_release_time_source_decides_what_it_can_of_a_need(combinator):
    """County housing combines fixed_address (known at release) with moves_6m (known only later): at
    release the record decides it exactly when the fixed address alone settles the rule, and then as
    the label does, whatever the moves turn out to be."""
    text = EXAMPLE_SPEC.read_text(encoding="utf-8")
    spec = parse_spec(
        text.replace(
            "    any:\n      - {column: fixed_address", f"    {combinator}:\n      - {{column: fixed_address"
        )
    )
    addresses = ["No", "Yes", None] * 2
    typed = _typed(spec, fixed_address=addresses, moves_6m=["0"] * 3 + ["3 or more"] * 3)
    encoder = RecordEncoder(spec).fit(typed)
    rule = observed_rules(spec, list(encoder.get_feature_names_out()), encoder.encode_value)["housing"]
    observed = [rule.holds(row) for row in encoder.transform(typed).to_numpy()]
    settles = {"any": "No", "all": "Yes"}[combinator]
    expected = [(combinator == "any") if a == settles else None for a in addresses]
    assert observed == expected
    labels = need_labels(typed, spec)["housing"].tolist()
    assert all(o == bool(label) for o, label in zip(observed, labels, strict=True) if o is not None)


def test_need_values_match_the_data_ignoring_case(other_spec):
    text = EXAMPLE_SPEC.read_text(encoding="utf-8").replace("value: unemployed", "value: ' Unemployed'")
    spec = parse_spec(text)
    labels = _labels(spec, "employment", employment_status=["unemployed", "EMPLOYED", None])
    assert _same(labels, [1, 0, np.nan])


def test_free_text_need_values_match_ignoring_case():
    spec = parse_spec(
        """
name: tiny
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
columns:
  - {name: employer, kind: categorical, domain: school_work}
needs:
  - {name: job, all: [{column: employer, op: '==', value: none}], interventions: [employment program]}
"""
    )
    assert _same(_labels(spec, "job", employer=["None", "Acme", "NONE "]), [1, 0, 1])


COMPARISONS = """
name: comparisons
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
columns:
  - {name: x, kind: numeric, domain: d}
  - {name: kind, kind: categorical, domain: d, values: [a, b]}
needs:
"""


def test_each_comparison_holds_exactly_where_its_operator_says_at_the_boundary():
    ops = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
    rules = "".join(
        f"  - {{name: {name}, all: [{{column: x, op: '{op}', value: 2}}], interventions: [i]}}\n"
        for name, op in ops.items()
    )
    rules += "  - {name: not_a, all: [{column: kind, op: '!=', value: a}], interventions: [i]}\n"
    spec = parse_spec(COMPARISONS + rules)
    typed = _typed(spec, x=["1", "2", "3", None], kind=["a", "b", "A", None])
    labels = need_labels(typed, spec)
    expected = {
        "lt": [1, 0, 0, np.nan],
        "le": [1, 1, 0, np.nan],
        "gt": [0, 0, 1, np.nan],
        "ge": [0, 1, 1, np.nan],
        "eq": [0, 1, 0, np.nan],
        "ne": [1, 0, 1, np.nan],
        "not_a": [0, 1, 0, np.nan],
    }
    for name, values in expected.items():
        assert _same(labels[name].tolist(), values), name


def test_a_record_decides_an_any_rule_when_one_of_its_release_time_conditions_holds():
    """Two conditions known at release: one true settles `any` (as the label does), even with the other
    false; both false settle it false."""
    rules = (
        "  - {name: either, any: [{column: x, op: '>=', value: 2}, {column: kind, op: '==', value: a}],"
        " interventions: [i]}\n"
        "  - {name: both, all: [{column: x, op: '>=', value: 2}, {column: kind, op: '==', value: a}],"
        " interventions: [i]}\n"
    )
    spec = parse_spec(COMPARISONS + rules)
    typed = _typed(spec, x=["3", "3", "1", "1", None, None], kind=["a", "b", "a", "b", "a", "b"])
    encoder = RecordEncoder(spec).fit(typed)
    rules_at_release = observed_rules(spec, list(encoder.get_feature_names_out()), encoder.encode_value)
    rows = encoder.transform(typed).to_numpy()
    assert [rules_at_release["either"].holds(r) for r in rows] == [True, True, True, False, True, None]
    assert [rules_at_release["both"].holds(r) for r in rows] == [True, False, False, False, None, False]
    for name in ("either", "both"):
        assert _same(
            need_labels(typed, spec)[name].tolist(),
            [np.nan if o is None else float(o) for o in (rules_at_release[name].holds(r) for r in rows)],
        )


def test_a_rule_on_an_ordinal_position_decides_at_release_as_the_label_does():
    """`value: 1` on an ordinal is its second level by position, for the record's observed rule as for
    the label: the position, not a level spelled "1", which the column does not have."""
    spec = parse_spec(
        """
name: ordinal_position
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
columns:
  - {name: debt, kind: ordinal, domain: d, order: [none, some, much]}
needs:
  - {name: money, all: [{column: debt, op: '>=', value: 1}], interventions: [budgeting]}
"""
    )
    typed = _typed(spec, debt=["none", "some", "much", None])
    encoder = RecordEncoder(spec).fit(typed)
    rule = observed_rules(spec, list(encoder.get_feature_names_out()), encoder.encode_value)["money"]
    observed = [rule.holds(row) for row in encoder.transform(typed).to_numpy()]
    assert observed == [False, True, True, None]
    assert _same(need_labels(typed, spec)["money"].tolist(), [0, 1, 1, np.nan])
