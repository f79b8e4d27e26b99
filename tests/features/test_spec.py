import re
from pathlib import Path

import pytest
import yaml

from features.spec import (
    QUOTE_HINT,
    ColumnSpec,
    Condition,
    DatasetSpec,
    DerivedSpec,
    Gates,
    IncumbentSpec,
    NeedSpec,
    OutcomeSpec,
    RiskBands,
    SpecError,
    builtin_specs,
    load_spec,
    parse_spec,
)

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


def test_a_spec_file_that_is_not_utf8_is_named(tmp_path: Path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(
        MINIMAL.replace("name: tiny", 'name: tiny\ndescription: "D\xe9partement"').encode("latin-1")
    )
    with pytest.raises(
        SpecError, match=r"latin.yaml is not UTF-8 text \(line 3 has byte 0xe9\); save it as UTF-8"
    ):
        load_spec(path)


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
        ("risk_bands: {cut_points: [0.5, 0.5], labels: [a, b, c]}", "strictly increasing"),  # b empty
        ("risk_bands: {cut_points: [0.0, 0.5], labels: [a, b, c]}", r"inside \(0, 1\)"),  # a empty
        ("risk_bands: {cut_points: [0.5, 1.0], labels: [a, b, c]}", r"inside \(0, 1\)"),  # c for p = 1 only
        ("risk_bands: {cut_points: [0.5], labels: [a]}", "needs 2 labels"),
        ("protected: [race]", "protected attribute race is not a declared column"),
        (
            "needs:\n  - {name: job, all: [{column: wage, op: '<', value: 1}], interventions: [x]}",
            "unknown column wage",
        ),
        ("needs:\n  - {name: job, interventions: [x]}", "exactly one of 'all' or 'any'"),
        (
            "needs:\n  - {name: job, all: [{column: age, op: '<', value: 1}], "
            "any: [{column: age, op: '>', value: 9}], interventions: [x]}",
            "exactly one of 'all' or 'any'",
        ),
        ("gates: {fairness_attribute: age}", "gates.fairness_attribute age is not a protected attribute"),
        ("colour: blue", "colour"),
        ("derived:\n  - {name: x, domain: d, op: sum, of: [age, wage]}", "uses unknown input wage"),
        ("derived:\n  - {name: x, domain: d, op: ratio, of: [age, age, age]}", "exactly two inputs"),
        ("columns:\n  - {name: age, kind: numeric, domain: d, min: 5, max: 1}", "min 5 is above max 1"),
        ("columns:\n  - {name: age, kind: ordinal, domain: d, order: [Low, low]}", "lists a value twice"),
        (
            "columns:\n  - {name: age, kind: numeric, domain: d, min: .nan}",
            r"columns\[0\] \(age\)\.min: .*finite number",
        ),
        (
            "columns:\n  - {name: age, kind: numeric, domain: d, max: .inf}",
            r"columns\[0\] \(age\)\.max: .*finite number",
        ),
        ("gates: {max_ece: .nan}", r"gates\.max_ece: .*finite number"),
        ("gates: {max_ece: -0.03}", r"gates\.max_ece: .*greater than or equal to 0"),
        ("gates: {max_fpr_gap: 5}", r"gates\.max_fpr_gap: .*less than or equal to 1"),
        (
            "columns:\n  - {name: age, kind: categorical, domain: d, values: []}",
            "column age lists no values; list them, or leave out 'values' to accept any text",
        ),
        ("needs:\n  - {name: job, any: [], interventions: [x]}", "need job has an empty 'any'"),
        ("needs:\n  - {name: job, all: [], interventions: [x]}", "need job has an empty 'all'"),
        (
            "needs:\n  - {name: job, all_of: [{column: age, op: '<', value: 20}], interventions: [x]}",
            r"needs\[0\] \(job\)\.all_of: unknown key",
        ),
        ("outcome: {column: pid, horizon_years: 2}", "outcome.column pid is also the id"),
        ("risk_bands: {cut_points: [0.5], labels: [low, low]}", "risk_bands.labels lists low twice"),
        (
            "risk_bands: {cut_points: [0.5], labels: [low, 'high: refer to intensive supervision']}",
            "risk_bands.labels: 'high: refer to intensive supervision' has 36 characters; each label "
            "needs 1 to 32 printable characters",
        ),
        ("risk_bands: {cut_points: [0.5], labels: [low, '']}", "risk_bands.labels: '' has 0 characters"),
        (
            'risk_bands: {cut_points: [0.5], labels: [low, "hi\\tgh"]}',
            r"risk_bands.labels: 'hi\\tgh' holds '\\t', which does not print; each label needs 1 to 32",
        ),
        (
            "incumbent: {column: lsi}",
            "incumbent.column lsi is not a declared column; it must be a numeric or ordinal column",
        ),
        (
            "derived:\n  - {name: pid, domain: d, op: sum, of: [age, age]}",
            "derived pid: that name is already",
        ),
        (
            "derived:\n  - {name: age, domain: d, op: sum, of: [age, age]}",
            "derived age: that name is already",
        ),
        (
            "outcome: rearrested",
            r"outcome: should be a mapping of keys \(docs/spec-format.md lists them\), not 'rearrested'$",
        ),
        ("columns:\n  - age", r"columns\[0\]: should be a mapping of keys .*, not 'age'$"),
        ("gates:\n  max_ece: 0.1\n  max_ece: 0.2", r"line \d+: key 'max_ece' is given twice"),
        ("name: a\nname: b", "key 'name' is given twice in one mapping"),
        (
            "columns:\n  - {name: age, kind: numeric, domain: d, order: [young, old]}",
            r"columns\[0\] \(age\): 'order' is only for ordinal columns; age is numeric",
        ),
        (
            "columns:\n  - {name: age, kind: ordinal, domain: d, order: [young, old], values: [young, old]}",
            r"columns\[0\] \(age\): 'values' is only for categorical columns; age is ordinal",
        ),
        (
            "columns:\n  - {name: age, kind: categorical, domain: d, min: 14}",
            r"columns\[0\] \(age\): 'min'/'max' are only for numeric columns; age is categorical",
        ),
        (
            "columns:\n  - {name: age, kind: boolean, domain: d, max: 1}",
            r"columns\[0\] \(age\): 'min'/'max' are only for numeric columns; age is boolean",
        ),
        (
            "needs:\n  - {name: job, all: [{column: age, op: '<', value: 20}], interventions: []}",
            r"needs\[0\] \(job\): need job lists no interventions",
        ),
        ("name: ''", "name: a spec needs a name: train compares it to tell layouts apart"),
        ("name: ' tiny'", "name: ' tiny' has spaces around it: write 'tiny'"),
    ],
)
def test_invalid_specs_say_what_is_wrong(change: str, message: str):
    key = change.split(":")[0]
    lines = [line for line in MINIMAL.strip().splitlines() if not line.startswith(key + ":")]
    if key == "columns":
        lines = [line for line in lines if not line.startswith("  - {name: age")]
    with pytest.raises(SpecError, match=message):
        parse_spec("\n".join(lines) + "\n" + change)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "- name: tiny\n- id: pid\n", "tiny\n"])
def test_a_spec_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str):
    """An empty file or a list would otherwise reach pydantic as a bare input and read as one odd error."""
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(error.value) == f"{path}: a spec is a YAML mapping with keys like name, id, columns"


LOCATED = (
    MINIMAL
    + """  - {name: school_status, kind: rank, domain: school}
  - {name: answer, kind: categorical, domain: d, values: [Yes, "No"]}
needs:
  - {name: employment, all: [{column: age, op: '<', value: 20}]}
"""
)


def test_errors_name_the_item_they_are_about():
    with pytest.raises(SpecError) as error:
        parse_spec(LOCATED)
    lines = str(error.value).splitlines()
    assert (
        "  columns[1] (school_status).kind: Input should be 'categorical', 'ordinal', 'boolean' or 'numeric'"
        in (lines)
    )
    assert "  needs[0] (employment).interventions: Field required" in lines
    assert (
        "  columns[2] (answer).values[0]: Input should be a valid string, got True (YAML reads unquoted "
        'Yes/No/On/Off as booleans and 1 as a number: quote them, as in "Yes")'
    ) in lines


def test_spec_wide_errors_carry_no_pydantic_wording():
    with pytest.raises(SpecError) as error:
        parse_spec(MINIMAL + "protected: [race]")
    assert str(error.value) == "<spec>: invalid spec\n  protected attribute race is not a declared column"


RICH = (
    MINIMAL
    + """  - {name: race, kind: categorical, domain: demographics, values: [A, B]}
  - {name: housing, kind: categorical, domain: residence, values: ["1", "2", own]}
  - {name: school, kind: ordinal, domain: school, order: [none, some, all]}
protected: [race]
"""
)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("protected: [race]", "protected: [race, race]", "protected lists race twice"),
        ("protected: [race]", "protected: [race, age]", "protected attribute age is numeric: each distinct"),
        (
            "\nprotected:",
            "\nincumbent: {column: housing}\nprotected:",
            "incumbent.column housing is categorical",
        ),
        (
            "\nprotected:",
            "\nderived:\n  - {name: x, domain: d, op: sum, of: [age, housing]}\nprotected:",
            "derived x uses categorical column housing, whose codes have no order",
        ),
        (
            "protected: [race]",
            "  - {name: moves, kind: numeric, known: supervision, domain: d}\nprotected: [race]\n"
            "derived:\n  - {name: x, domain: d, op: sum, of: [age, moves]}",
            "derived x uses moves, which is known only during supervision",
        ),
        (
            "protected: [race]",
            "protected: [race, school]\nderived:\n  - {name: x, domain: d, op: sum, of: [age, school]}",
            "derived x uses protected attribute school; those are never inputs",
        ),
    ],
)
def test_contradictory_specs_are_refused(old: str, new: str, message: str):
    assert old in RICH
    with pytest.raises(SpecError, match=message):
        parse_spec(RICH.replace(old, new))


def test_derived_inputs_take_quantities_known_at_release():
    text = RICH + "derived:\n  - {name: x, domain: d, op: product, of: [age, school]}"
    assert [d.name for d in parse_spec(text).derived] == ["x"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{column: race, op: '==', value: A}",
            "need job is defined by protected attribute race; a need may not be defined by a protected",
        ),
        ("{column: housing, op: '==', value: 3}", r"3 is not a value of housing; allowed: one of '1', '2'"),
        ("{column: housing, op: '==', value: Yes}", r"True is not a value of housing.*unquoted Yes/No"),
        ("{column: housing, op: '<', value: '2'}", "categorical column housing allows == or != only"),
        ("{column: age, op: '<', value: half}", "numeric column age compares to a number, not 'half'"),
        ("{column: school, op: '>=', value: 3}", r"3 is not a level of school.*2 = 'all'"),
        ("{column: school, op: '>=', value: most}", "'most' is not a level of school"),
        ("{column: school, op: '==', value: Yes}", r"True is not a level of school.*unquoted Yes/No"),
        (
            "{column: school, op: '>=', value: 1.5}",
            r"1.5 is not a level of school; use a level or its position",
        ),
    ],
)
def test_need_rules_are_checked_against_their_column(rule: str, message: str):
    with pytest.raises(SpecError, match=message):
        parse_spec(RICH + f"needs:\n  - {{name: job, all: [{rule}], interventions: [x]}}")


@pytest.mark.parametrize(("value", "shown"), [("Maybe", "'Maybe'"), ("2", "2")])
def test_a_boolean_rule_names_the_value_as_written_and_every_word_allowed(value: str, shown: str):
    flag = "  - {name: flag, kind: boolean, domain: d}\nprotected:"
    rule = f"needs:\n  - {{name: job, all: [{{column: flag, op: '==', value: {value}}}], interventions: [x]}}"
    with pytest.raises(SpecError) as error:
        parse_spec(RICH.replace("protected:", flag) + rule)
    assert str(error.value).splitlines()[1:] == [
        f"  need job: {shown} is not a value of boolean column flag; "
        "allowed: Yes/No, True/False or 1/0 (any case)"
    ]


@pytest.mark.parametrize(
    ("levels", "value", "message"),
    [
        (
            (1, 2, 3),
            2,
            r"""2 is level '2' of priors and also the position of level '3 or more'; a number is read as a """
            r"""position: quote the level meant \(value: "2" or value: "3 or more"\)""",
        ),
        (
            (2, 3, 4),
            3,
            r"""3 is level '3' of priors; a number is read as a position: """
            r"""quote the level meant \(value: "3"\)""",
        ),
    ],
)
def test_a_number_that_is_another_levels_text_is_refused_as_ambiguous(levels, value, message):
    """A number is a level's position: `>= 2` on levels 1, 2, 3 or more meant "3 or more" without a word,
    while a data file's 2 is the level "2"."""
    priors = '  - {{name: priors, kind: ordinal, domain: d, order: ["{}", "{}", "{} or more"]}}\nprotected:'
    rule = "needs:\n  - {{name: job, all: [{{column: priors, op: '>=', value: {}}}], interventions: [x]}}"
    counts = RICH.replace("protected:", priors.format(*levels))
    with pytest.raises(SpecError, match=message):
        parse_spec(counts + rule.format(value))
    assert parse_spec(counts + rule.format(f'"{value}"')).need("job").conditions[0].value == str(value)
    from_zero = RICH.replace("protected:", priors.format(0, 1, 2))
    assert parse_spec(from_zero + rule.format(1)).need("job").conditions[0].value == 1


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


DOCUMENTED = {
    DatasetSpec: "## Top-level keys",
    OutcomeSpec: "### `outcome`",
    IncumbentSpec: "### `incumbent`",
    RiskBands: "### `risk_bands`",
    Gates: "### `gates`",
    ColumnSpec: "## Columns",
    NeedSpec: "## Needs",
    Condition: "### Conditions",
    DerivedSpec: "## Derived inputs",
}


def _documented_keys(heading: str) -> dict[str, list[str]]:
    """Rows of the key table under `heading`: key -> [required, default, meaning]."""
    page = (DOCS / "spec-format.md").read_text()
    section = re.split(r"\n#{1,3} ", page.split(f"\n{heading}\n", 1)[1], maxsplit=1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return {cells[0].strip().strip("`"): [c.strip() for c in cells[1:]] for cells in rows}


@pytest.mark.parametrize("model", list(DOCUMENTED), ids=lambda model: model.__name__)
def test_every_spec_key_is_documented_with_its_default(model):
    documented = _documented_keys(DOCUMENTED[model])
    keys = {field.alias or name: field for name, field in model.model_fields.items()}
    assert set(documented) == set(keys)
    for key, field in keys.items():
        required, default, _ = documented[key]
        assert (required == "yes") is field.is_required(), key
        if isinstance(field.default, bool | int | float | str) and field.default != "":
            assert default == f"`{yaml.safe_dump(field.default).splitlines()[0]}`", key


def test_every_cross_reference_problem_is_reported_at_once():
    text = (
        RICH.replace("protected: [race]", "protected: [race, ethnicity]")
        + "incumbent: {column: lsi}\n"
        + "derived:\n  - {name: x, domain: d, op: sum, of: [age, wage]}\n"
        + "needs:\n  - {name: job, all: [{column: salary, op: '<', value: 1}], interventions: [x]}\n"
        + "  - {name: home, all: [{column: housing, op: '==', value: castle}], interventions: [x]}\n"
    )
    with pytest.raises(SpecError) as error:
        parse_spec(text)
    assert str(error.value).splitlines() == [
        "<spec>: invalid spec",
        "  protected attribute ethnicity is not a declared column",
        "  incumbent.column lsi is not a declared column; it must be a numeric or ordinal column",
        "  derived x uses unknown input wage; 'of' lists declared columns or earlier derived inputs",
        "  need job refers to unknown column salary",
        "  need home: 'castle' is not a value of housing; allowed: one of '1', '2', 'own', in any case "
        f"({QUOTE_HINT})",
    ]


def test_repeated_and_misplaced_names_are_reported_at_once():
    text = (
        MINIMAL
        + "  - {name: age, kind: numeric, domain: d}\n"
        + "  - {name: pid, kind: categorical, domain: d}\n"
        + "  - {name: rearrested, kind: boolean, domain: d}\n"
        + "needs:\n  - {name: job, all: [{column: age, op: '<', value: 20}], interventions: [x]}\n"
        + "  - {name: job, all: [{column: age, op: '>', value: 60}], interventions: [y]}\n"
    )
    with pytest.raises(SpecError) as error:
        parse_spec(text)
    assert str(error.value).splitlines() == [
        "<spec>: invalid spec",
        "  columns listed twice: age",
        "  pid is the id; do not list it under columns",
        "  rearrested is outcome.column; do not list it under columns",
        "  needs listed twice: job",
    ]


def test_need_values_match_declared_values_and_levels_ignoring_case():
    spec = parse_spec(
        RICH
        + "needs:\n  - {name: home, all: [{column: housing, op: '==', value: ' OWN '}], interventions: [x]}\n"
        + "  - {name: study, all: [{column: school, op: '>=', value: Some}], interventions: [x]}\n"
    )
    assert [c.value for n in spec.needs for c in n.conditions] == [" OWN ", "Some"]


@pytest.mark.parametrize(
    ("bounds", "allowed"),
    [
        ({"min": 16, "max": 100}, "a number in [16, 100]"),
        ({"min": 0}, "a finite number >= 0"),
        ({"max": 1.5}, "a finite number <= 1.5"),
        ({}, "a finite number"),
    ],
)
def test_a_numeric_columns_allowed_values_never_name_infinity(bounds, allowed):
    """Infinite values are refused, so a message saying 'in [0, inf]' would contradict itself."""
    assert ColumnSpec(name="x", kind="numeric", domain="d", **bounds).allowed() == allowed
