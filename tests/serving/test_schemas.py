"""The record schema generated from a spec, and what changes between two of them."""

from features.spec import DatasetSpec
from serving.schemas import example_record, record_changes, record_model


def _schema(spec: DatasetSpec) -> dict:
    return record_model(spec, {}).model_json_schema()


def _changed(spec: DatasetSpec, edit) -> DatasetSpec:
    data = spec.model_dump(by_alias=True, exclude_none=True)
    edit(data)
    return DatasetSpec.model_validate(data)


def _column(data: dict, name: str) -> dict:
    return next(c for c in data["columns"] if c["name"] == name)


def test_the_same_spec_has_no_record_changes(spec):
    assert record_changes(_schema(spec), _schema(spec)) == []


def test_record_changes_name_every_field_added_removed_or_changed(spec):
    def edit(data: dict) -> None:
        data["columns"] = [c for c in data["columns"] if c["name"] != "Gang_Affiliated"]
        data["columns"].append({"name": "Housing_Voucher", "kind": "boolean", "domain": "residence"})
        _column(data, "Supervision_Risk_Score_First")["max"] = 12
        _column(data, "Gender")["values"] = ["M", "F", "X"]
        _column(data, "Supervision_Level_First")["values"] = ["Standard", "High"]
        _column(data, "Age_at_Release")["kind"] = "numeric"
        _column(data, "Age_at_Release").pop("order")

    changes = record_changes(_schema(spec), _schema(_changed(spec, edit)))
    assert changes == [
        "added field Housing_Voucher",
        "removed field Gang_Affiliated",
        "changed field Gender (levels added: 'X')",
        "changed field Age_at_Release (type string is now number)",
        "changed field Supervision_Risk_Score_First (maximum 10 is now 12)",
        "changed field Supervision_Level_First (levels removed: 'Specialized')",
    ]


def test_a_single_level_and_free_text_are_told_apart_from_levels_removed(spec):
    """Pydantic writes a field with one level as `const`, and free text has no levels at all: neither
    means that every level is refused now."""

    def edit(data: dict) -> None:
        _column(data, "Gender")["values"] = ["M"]
        _column(data, "Supervision_Level_First").pop("values")

    changes = record_changes(_schema(spec), _schema(_changed(spec, edit)))
    assert changes == [
        "changed field Gender (levels removed: 'F')",
        "changed field Supervision_Level_First (levels 'Standard', 'High', 'Specialized' is now any text; "
        "longest text none is now 200)",
    ]
    back = record_changes(_schema(_changed(spec, edit)), _schema(spec))
    assert back[0] == "changed field Gender (levels added: 'F')"


def test_the_documented_example_record_is_one_the_server_accepts(spec):
    """The OpenAPI example is scored as is: a numeric input with only a negative maximum, or a range
    narrower than the example's two decimals, still gets a value inside its range."""

    def edit(data: dict) -> None:
        _column(data, "Supervision_Risk_Score_First").pop("min")
        _column(data, "Supervision_Risk_Score_First")["max"] = -5
        data["columns"].append(
            {"name": "Dose", "kind": "numeric", "domain": "substance_use", "min": 0.001, "max": 0.004}
        )

    for each in (spec, _changed(spec, edit)):
        example = example_record(each)
        assert set(example) == set(each.inputs())
        record_model(each, example).model_validate(example)
