"""What a spec edited under its own name changes, as train says beside the version before."""

from features.spec import DatasetSpec, load_spec
from training.spec_changes import spec_changes


def _edited(spec: DatasetSpec, **changes) -> DatasetSpec:
    return DatasetSpec.model_validate(spec.model_dump(by_alias=True, exclude_none=True) | changes)


def test_an_unchanged_spec_changes_nothing(spec):
    assert spec_changes(spec, load_spec("georgia_parole")) == ([], False)


def test_record_fields_added_dropped_and_declared_otherwise_change_the_records(spec):
    columns = spec.model_dump(by_alias=True, exclude_none=True)["columns"]
    kept = [c for c in columns if c["name"] != "Dependents"]
    for column in kept:
        if column["name"] == "Prison_Years":
            column["description"] = "Years in prison, as the department counts them"
    new = {"name": "Housing_At_Release", "kind": "boolean", "domain": "housing", "required": False}
    changes, records_change = spec_changes(spec, _edited(spec, columns=[*kept, new]))
    assert changes == [
        "record fields added: Housing_At_Release",
        "record fields dropped: Dependents",
        "record fields declared otherwise: Prison_Years",
    ]
    assert records_change


def test_bands_and_other_declarations_are_said_without_changing_the_records(spec):
    bands = {"cut_points": [0.5], "labels": ["low", "high"]}
    gates = spec.gates.model_dump() | {"max_ece": 0.05}
    changes, records_change = spec_changes(spec, _edited(spec, risk_bands=bands, gates=gates))
    assert changes == [
        "risk bands low, high cut at 0.5 (were low, moderate, high, very_high cut at 0.35, 0.55, 0.75)",
        "also changed: gates",
    ]
    assert not records_change


def test_a_supervision_time_column_added_is_said_without_changing_the_records(spec):
    columns = spec.model_dump(by_alias=True, exclude_none=True)["columns"]
    later = {"name": "Curfew_Violations", "kind": "numeric", "known": "supervision", "domain": "supervision"}
    changes, records_change = spec_changes(spec, _edited(spec, columns=[*columns, later]))
    assert changes == ["supervision-time columns added or dropped: Curfew_Violations"]
    assert not records_change
