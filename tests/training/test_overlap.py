"""Recognising training rows by salted hashes of the rows (id and values)."""

import pandas as pd
import pytest

from features.spec import parse_spec
from features.validation import validate_records
from training.overlap import new_salt, row_hashes, row_keys, training_rows

SPEC = parse_spec(
    """
name: tiny
id: pid
outcome: {column: rearrested, horizon_years: 1}
risk_bands: {cut_points: [0.5], labels: [low, high]}
columns:
  - {name: age, kind: numeric, domain: demographics}
  - {name: employed, kind: boolean, domain: school_work, required: false}
"""
)


def _typed(rows: list[dict]) -> pd.DataFrame:
    typed, report = validate_records(pd.DataFrame(rows, dtype=object).astype("str"), SPEC)
    assert report.ok, report.lines()
    return typed


@pytest.fixture
def metadata() -> dict:
    fitted = _typed(
        [
            {"pid": "1", "age": "30", "employed": "Yes", "rearrested": "No"},
            {"pid": "2", "age": "41.5", "employed": "No", "rearrested": "Yes"},
        ]
    )
    salt = new_salt()
    return {"training_row_salt": salt, "training_row_hashes": row_hashes(row_keys(fitted, SPEC), salt)}


def test_a_row_is_known_again_in_another_order_and_spelling(metadata):
    again = _typed(
        [
            {"rearrested": "yes", "employed": "false", "age": "41.50", "pid": "2"},
            {"rearrested": "NO", "employed": "TRUE", "age": "30.0", "pid": "1"},
            {"rearrested": "No", "employed": "Yes", "age": "30", "pid": "3"},
        ]
    )
    assert training_rows(again, SPEC, metadata) == 2


def test_a_number_rewritten_by_a_json_writer_is_the_same_value(metadata):
    """pandas' to_json writes 2.881 read from a CSV as 2.8810000000000002: a re-export of the training
    file as JSON Lines found 1,002 of its 1,125 training rows."""
    again = _typed([{"pid": "2", "age": "41.50000000000001", "employed": "No", "rearrested": "Yes"}])
    assert training_rows(again, SPEC, metadata) == 1


def test_a_file_without_an_optional_column_still_holds_its_training_rows(metadata):
    """An export may leave an optional column out: the rows are still the ones fitted on."""
    again = _typed([{"pid": "1", "age": "30", "rearrested": "No"}])
    assert training_rows(again, SPEC, metadata) == 1


def test_another_person_under_a_recycled_id_is_not_a_training_row(metadata):
    assert (
        training_rows(
            _typed([{"pid": "1", "age": "52", "employed": "No", "rearrested": "No"}]), SPEC, metadata
        )
        == 0
    )


def test_the_same_rows_hash_apart_under_another_salt():
    keys = row_keys(_typed([{"pid": str(i), "age": "30", "rearrested": "No"} for i in range(50)]), SPEC)
    assert not set(row_hashes(keys, new_salt())) & set(row_hashes(keys, new_salt()))


def test_a_model_that_kept_no_hashes_cannot_tell():
    assert (
        training_rows(_typed([{"pid": "1", "age": "30", "rearrested": "No"}]), SPEC, {"n_train": 10}) is None
    )
