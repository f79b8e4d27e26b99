"""Recognising training rows by salted hashes of the rows (id and values)."""

import pandas as pd
import pytest

from features.spec import parse_spec
from features.validation import validate_records
from training.overlap import EVERY_REQUIRED, KEY, new_salt, row_hashes, row_keys, training_rows

SPEC = parse_spec(
    """
name: tiny
id: pid
outcome: {column: rearrested, horizon_years: 1}
risk_bands: {cut_points: [0.5], labels: [low, high]}
protected: [group]
columns:
  - {name: age, kind: numeric, domain: demographics}
  - {name: employed, kind: boolean, domain: school_work, required: false}
  - {name: group, kind: categorical, domain: demographics, values: [A, B]}
  - {name: violations, kind: numeric, domain: supervision, known: supervision}
"""
)


def _typed(rows: list[dict]) -> pd.DataFrame:
    """Rows typed as evaluate types them: supervision-time columns may be empty or absent."""
    raw = pd.DataFrame(rows, dtype=object).astype("str").replace("", None)  # an empty cell, as read
    typed, report = validate_records(raw, SPEC, supervision=False)
    assert report.ok, report.lines()
    return typed


FITTED = [
    {"pid": "1", "age": "30", "employed": "Yes", "group": "A", "violations": "0", "rearrested": "No"},
    {"pid": "2", "age": "41.5", "employed": "No", "group": "B", "violations": "3", "rearrested": "Yes"},
]


def _metadata(key: str) -> dict:
    salt = new_salt()
    hashes = row_hashes(row_keys(_typed(FITTED), SPEC, key), salt)
    return {"training_row_salt": salt, "training_row_key": key, "training_row_hashes": hashes}


@pytest.fixture
def metadata() -> dict:
    return _metadata(KEY)


def test_a_row_is_known_again_in_another_order_and_spelling(metadata):
    again = _typed(
        [
            {
                "rearrested": "yes",
                "violations": "3",
                "group": "B",
                "employed": "false",
                "age": "41.50",
                "pid": "2",
            },
            {
                "rearrested": "NO",
                "violations": "0.0",
                "group": "a",
                "employed": "TRUE",
                "age": "30.0",
                "pid": "1",
            },
            {"rearrested": "No", "violations": "0", "group": "A", "employed": "Yes", "age": "30", "pid": "3"},
        ]
    )
    assert training_rows(again, SPEC, metadata, []) == 2


def test_a_number_rewritten_by_a_json_writer_is_the_same_value(metadata):
    """pandas' to_json writes 2.881 read from a CSV as 2.8810000000000002: a re-export of the training
    file as JSON Lines found 1,002 of its 1,125 training rows."""
    again = _typed([{**FITTED[1], "age": "41.50000000000001"}])
    assert training_rows(again, SPEC, metadata, []) == 1


def test_a_file_without_an_optional_column_still_holds_its_training_rows(metadata):
    """An export may leave an optional column out: the rows are still the ones fitted on."""
    again = _typed([{"pid": "1", "age": "30", "group": "A", "violations": "0", "rearrested": "No"}])
    assert training_rows(again, SPEC, metadata, []) == 1


def test_another_person_under_a_recycled_id_is_not_a_training_row(metadata):
    assert training_rows(_typed([{**FITTED[0], "age": "52"}]), SPEC, metadata, []) == 0


def test_a_row_is_known_again_with_a_column_the_models_do_not_read_blanked_or_left_out(metadata):
    """A supervision-time or protected column blanked, changed or left out leaves the row the models were
    fitted on: a file of such rows said includes_training_rows false, and its AUC was 0.752, not 0.732."""
    blanked = _typed([{**FITTED[0], "violations": "", "group": ""}, {**FITTED[1], "violations": ""}])
    assert training_rows(blanked, SPEC, metadata, []) == 2
    changed = _typed([{**FITTED[0], "group": "B"}, {**FITTED[1], "violations": "7"}])
    assert training_rows(changed, SPEC, metadata, []) == 2
    left_out = _typed([{k: v for k, v in FITTED[0].items() if k != "violations"}])
    assert training_rows(left_out, SPEC, metadata, ["violations"]) == 1


def test_a_model_keyed_by_every_required_column_still_counts_by_them():
    """Versions trained before the key left out what the models do not read count as they did, and cannot
    tell for a file that lacks a column of their key."""
    older = _metadata(EVERY_REQUIRED)
    del older["training_row_key"]
    assert training_rows(_typed(FITTED), SPEC, older, []) == 2
    assert training_rows(_typed([{**FITTED[0], "violations": ""}]), SPEC, older, []) == 0
    assert training_rows(_typed(FITTED), SPEC, older, ["violations"]) is None


def test_the_same_rows_hash_apart_under_another_salt():
    keys = row_keys(_typed([{**FITTED[0], "pid": str(i)} for i in range(50)]), SPEC)
    assert not set(row_hashes(keys, new_salt())) & set(row_hashes(keys, new_salt()))


def test_a_model_that_kept_no_hashes_cannot_tell():
    assert training_rows(_typed([{**FITTED[0]}]), SPEC, {"n_train": 10}, []) is None
