"""The record schema generated from a spec, and what changes between two of them."""

from jsonschema import Draft202012Validator

from features.example import example_record
from features.spec import DatasetSpec
from serving.schemas import BatchPublic, record_changes, record_model, record_values, score_request_model


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


def test_levels_reordered_and_a_new_description_are_named(spec):
    """An ordinal's order is its meaning (a later level is more), and a field's description is what a
    caller reads it by: a version changing either accepts the same values but means other things by them."""

    def edit(data: dict) -> None:
        age = _column(data, "Age_at_Release")
        age["order"] = list(reversed(age["order"]))
        _column(data, "Supervision_Risk_Score_First")["description"] = "The first supervision risk score."

    changes = record_changes(_schema(spec), _schema(_changed(spec, edit)))
    assert changes == [
        "changed field Age_at_Release (levels reordered)",
        "changed field Supervision_Risk_Score_First (description 'supervision' is now 'The first "
        "supervision risk score.')",
    ]


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


def test_a_column_named_like_a_pydantic_attribute_is_a_field_like_any_other():
    """Exports name columns as they like (`_age` from a data-collection tool, `model_config`, `json`):
    each is a field of the record under its own name; pydantic refused the first at start-up and
    never accepted the second."""
    from features.spec import parse_spec
    from serving.schemas import score_request_model

    spec = parse_spec(
        """
name: export
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
protected: [_group]
columns:
  - {name: _age, kind: numeric, domain: demographics, min: 16, max: 100}
  - {name: model_config, kind: boolean, domain: supervision}
  - {name: json, kind: categorical, domain: criminal_history, values: [a, b]}
  - {name: _group, kind: categorical, domain: demographics, values: [x, y]}
"""
    )
    example = example_record(spec)
    record = record_model(spec, example)
    assert list(record.model_json_schema()["properties"]) == ["_age", "model_config", "json", "_group"]
    given = {"_age": 30, "model_config": "yes", "json": "B", "_group": "x"}
    body = score_request_model(record).model_validate({"record": given})
    assert record_values(body.record) == {"_age": 30.0, "model_config": True, "json": "b", "_group": "x"}
    assert record_values(record.model_validate(example)) == example
    refused = [e["loc"] for e in _errors(record, {"_age": 200, "field_0": 1})]
    assert refused == [("_age",), ("field_0",)]
    assert _errors(record, {"_group": "x"})[0]["msg"].endswith(
        "none of the model's inputs, so a score would "
        "only repeat the base rate; send what is known of the person (every input is listed in the schema)"
    )


def _errors(model, data: dict) -> list[dict]:
    from pydantic import ValidationError

    try:
        model.model_validate(data)
    except ValidationError as exc:
        return exc.errors()
    raise AssertionError(f"{data} was accepted")


def test_a_column_known_only_later_is_refused_saying_why(spec):
    """A case-management system sending its whole row is told why each extra column is not taken,
    not just that it is unknown; null for such a column is as good as leaving it out."""
    later = next(c.name for c in spec.columns if c.known == "supervision")
    record = record_model(spec, {})
    given = {"Gang_Affiliated": "no"}
    sent = {**given, later: 1, spec.outcome.column: True, spec.id: 7, "Nickname": "x"}
    messages = {e["loc"][0]: e["msg"] for e in _errors(record, sent)}
    assert messages[later].endswith(
        "is recorded during supervision, after release; the model scores at release and does not take "
        "it: leave it out"
    )
    assert messages[spec.outcome.column].endswith(
        "is the outcome the model predicts; a score is never given it: leave it out"
    )
    assert messages[spec.id].endswith("is the person's id: send it as person_id beside the record")
    assert messages["Nickname"] == "Extra inputs are not permitted"
    assert record_values(record.model_validate({**given, later: None})) == {"Gang_Affiliated": False}
    assert later not in _schema(spec)["properties"]


def test_a_column_named_like_the_alias_of_another_is_its_own_field():
    from features.spec import parse_spec

    spec = parse_spec(
        """
name: export
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
columns:
  - {name: _age, kind: numeric, domain: demographics, min: 16, max: 100}
  - {name: field_0, kind: numeric, domain: demographics}
"""
    )
    record = record_model(spec, example_record(spec))
    assert record_values(record.model_validate({"_age": 30, "field_0": 2})) == {"_age": 30.0, "field_0": 2.0}


def test_the_request_schema_says_what_the_server_refuses_beyond_types(spec):
    """A client trusting only the document sent an id of dots or an empty record and met a 422 the schema
    allowed: the first is now in the schema, the second in the record's description."""
    schema = score_request_model(record_model(spec, {})).model_json_schema()
    validator = Draft202012Validator(schema)
    record = {"Gender": "F"}
    assert validator.is_valid({"person_id": ".x", "assessment_id": "A.1", "record": record})
    assert not validator.is_valid({"person_id": "..", "record": record})
    assert not validator.is_valid({"assessment_id": ".", "record": record})
    assert "at least one input must be given" in schema["$defs"]["Record"]["description"]
    race = schema["$defs"]["Record"]["properties"]["Race"]["description"]
    assert race == "demographics. Protected: stored for audits, never a model input."
    described = spec.model_copy(
        update={"columns": [c.model_copy(update={"description": "Race as recorded."}) for c in spec.columns]}
    )
    race = record_model(described, {}).model_json_schema()["properties"]["Race"]["description"]
    assert race == "Race as recorded. Protected: stored for audits, never a model input."


def test_a_batch_item_documents_the_two_statuses_it_can_have():
    """A client generated from the document had to handle any integer as an item's status."""
    status = BatchPublic.model_json_schema()["$defs"]["BatchItem"]["properties"]["status"]
    assert status["enum"] == [201, 422]
