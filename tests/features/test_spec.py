from pathlib import Path

import pytest
import yaml

from features.spec import SpecError, builtin_specs, load_spec, parse_spec

NIJ_COLUMNS = 48  # the file's 50 columns minus the id and the outcome


def test_builtin_georgia_spec_covers_every_column(spec):
    assert "georgia_parole" in builtin_specs()
    assert len(spec.columns) == NIJ_COLUMNS
    assert spec.id == "ID"
    assert spec.outcome.column == "Recidivism_Within_3years"
    assert spec.outcome.horizon_years == 3
    assert spec.protected == ["Race"]
    assert spec.incumbent.column == "Supervision_Risk_Score_First"
    assert spec.column("Prior_Arrest_Episodes_Felony").order[-1] == "10 or more"
    assert spec.column("Percent_Days_Employed").known == "supervision"
    assert {n.name for n in spec.needs} == {
        "employment",
        "housing",
        "substance_use",
        "treatment",
        "education",
        "compliance",
    }


def test_need_interventions_follow_the_domain_map(spec):
    assert spec.need("employment").interventions == ["employment program", "education and training"]
    assert spec.need("housing").interventions == ["housing services"]
    assert spec.need("compliance").interventions == ["mentoring", "counseling"]
    assert spec.need("substance_use").sources == [
        "DrugTests_THC_Positive",
        "DrugTests_Cocaine_Positive",
        "DrugTests_Meth_Positive",
        "DrugTests_Other_Positive",
    ]


def test_inputs_exclude_protected_supervision_and_excluded(spec):
    inputs = spec.inputs()
    assert "Race" not in inputs
    assert all(spec.column(c).known == "release" for c in inputs)
    assert "Condition_MH_SA" not in spec.inputs(exclude=spec.need("treatment").sources)


def test_load_from_file_path(tmp_path: Path, spec):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(by_alias=True, exclude_none=True)))
    assert load_spec(path) == spec


def test_unknown_name_lists_the_builtins():
    with pytest.raises(SpecError, match=r"unknown spec 'nope'.*georgia_parole"):
        load_spec("nope")


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "absent.yaml")


MINIMAL = """
name: tiny
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
columns:
  - {name: age, kind: numeric, domain: demographics, min: 14}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("columns:\n  - {name: age, kind: ordinal, domain: d}", "needs 'order'"),
        ("columns:\n  - {name: age, kind: colour, domain: d}", "kind"),
        ("risk_bands: {cut_points: [0.5, 0.4], labels: [a, b, c]}", "strictly increasing"),
        ("risk_bands: {cut_points: [0.5], labels: [a]}", "needs 2 labels"),
        ("protected: [race]", "protected attribute race is not a declared column"),
        (
            "needs:\n  - {name: job, all: [{column: wage, op: '<', value: 1}], interventions: [x]}",
            "unknown column wage",
        ),
        ("needs:\n  - {name: job, interventions: [x]}", "exactly one of 'all' or 'any'"),
        ("colour: blue", "colour"),
        ("derived:\n  - {name: x, domain: d, op: sum, of: [age, wage]}", "unknown: wage"),
        ("derived:\n  - {name: x, domain: d, op: ratio, of: [age, age, age]}", "exactly two inputs"),
        ("columns:\n  - {name: age, kind: numeric, domain: d, min: 5, max: 1}", "min 5 is above max 1"),
        ("columns:\n  - {name: age, kind: ordinal, domain: d, order: [Low, low]}", "lists a value twice"),
    ],
)
def test_invalid_specs_say_what_is_wrong(change: str, message: str):
    key = change.split(":")[0]
    lines = [line for line in MINIMAL.strip().splitlines() if not line.startswith(key + ":")]
    if key == "columns":
        lines = [line for line in lines if not line.startswith("  - {name: age")]
    with pytest.raises(SpecError, match=message):
        parse_spec("\n".join(lines) + "\n" + change)


RICH = (
    MINIMAL
    + """  - {name: race, kind: categorical, domain: demographics, values: [A, B]}
  - {name: housing, kind: categorical, domain: residence, values: ["1", "2", own]}
  - {name: school, kind: ordinal, domain: school, order: [none, some, all]}
protected: [race]
"""
)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{column: race, op: '==', value: A}", "need job is defined by protected attribute race"),
        ("{column: housing, op: '==', value: 3}", r"3 is not a value of housing; allowed: one of '1', '2'"),
        ("{column: housing, op: '==', value: Yes}", r"True is not a value of housing.*quote values"),
        ("{column: age, op: '<', value: half}", "numeric column age compares to a number, not 'half'"),
        ("{column: school, op: '>=', value: 3}", r"3 is not a level of school.*2 = 'all'"),
        ("{column: school, op: '>=', value: most}", "'most' is not a level of school"),
    ],
)
def test_need_rules_are_checked_against_their_column(rule: str, message: str):
    with pytest.raises(SpecError, match=message):
        parse_spec(RICH + f"needs:\n  - {{name: job, all: [{rule}], interventions: [x]}}")


def test_an_unquoted_number_matches_its_categorical_value():
    spec = parse_spec(
        RICH + "needs:\n  - {name: job, all: [{column: housing, op: '==', value: 1}], interventions: [x]}"
    )
    assert str(spec.need("job").conditions[0].value) == "1"


def test_a_spec_never_executes_code():
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_spec("!!python/object/apply:os.system ['echo hacked']")


def test_band_edges_belong_to_the_band_above(spec):
    bands = spec.risk_bands
    assert bands.band(0.0) == "low"
    assert bands.band(bands.cut_points[0]) == bands.labels[1]
    assert bands.band(1.0) == bands.labels[-1]


def test_georgia_spec_matches_the_real_header(spec, real_data_path):
    header = real_data_path.read_text().splitlines()[0].split(",")
    assert header == spec.layout()


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_documented_example_spec_loads_and_matches_the_page():
    example = DOCS / "examples" / "county_probation.yaml"
    spec = load_spec(example)
    assert spec.inputs() == [
        "age",
        "lsi_total",
        "prior_convictions",
        "prior_custody",
        "offence_type",
        "employment_status",
        "fixed_address",
        "peers_offending",
    ]
    assert example.read_text() in (DOCS / "spec-format.md").read_text()
