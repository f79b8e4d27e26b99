import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.records import as_text, read_records
from features.spec import DatasetSpec
from features.validation import RecordsInvalid, validate_records


def _broken(raw: pd.DataFrame, row: int, column: str, value: str) -> pd.DataFrame:
    broken = raw.copy()
    broken.loc[broken.index[row - 1], column] = value
    return broken


def test_synthetic_cohort_is_valid(synthetic_raw, spec):
    typed, report = validate_records(synthetic_raw, spec)
    assert report.ok, report.lines()
    assert len(typed) == len(synthetic_raw)
    assert isinstance(typed["Prison_Years"].dtype, pd.CategoricalDtype)
    assert typed["Prison_Years"].cat.ordered
    assert pd.api.types.is_bool_dtype(typed["Gang_Affiliated"])
    assert pd.api.types.is_numeric_dtype(typed["Percent_Days_Employed"])
    assert pd.api.types.is_string_dtype(typed["Gender"])


@pytest.mark.parametrize(
    ("column", "value", "allowed"),
    [
        ("Prison_Years", "forever", "allowed: one of 'Less than 1 year'"),
        ("Gender", "X", "allowed: one of 'M', 'F'"),
        ("Gang_Affiliated", "maybe", "Yes/No, True/False or 1/0"),
        ("Percent_Days_Employed", "1.5", r"a number in \[0, 1\]"),
        ("Percent_Days_Employed", "-0.1", r"a number in \[0, 1\]"),
        ("Percent_Days_Employed", "lots", r"a number in \[0, 1\]"),
        ("Prior_Arrest_Episodes_Felony", "12", "'10 or more'"),
        ("Prior_Arrest_Episodes_Felony", "1.5", "'10 or more'"),
        ("Gang_Affiliated", "2.0", "Yes/No, True/False or 1/0"),
        ("Recidivism_Within_3years", "Sometimes", "Yes/No"),
        ("Avg_Days_per_DrugTest", "inf", "allowed: a finite number >= 0$"),
        ("Avg_Days_per_DrugTest", "1e309", "allowed: a finite number >= 0$"),
        ("Avg_Days_per_DrugTest", "-3", "allowed: a finite number >= 0$"),
    ],
)
def test_bad_value_names_row_column_value_and_allowed(synthetic_raw, spec, column, value, allowed):
    _, report = validate_records(_broken(synthetic_raw, 7, column, value), spec)
    assert report.n_problems == 1
    problem = report.problems[0]
    assert (problem.row, problem.column, problem.value) == (7, column, value)
    assert str(problem).startswith(f"row 7, column {column}: {value!r} is not allowed")
    assert pd.Series([str(problem)]).str.contains(allowed).all()


def test_missing_columns_are_named(synthetic_raw, spec):
    _, report = validate_records(synthetic_raw.drop(columns=["Gender", "Recidivism_Within_3years"]), spec)
    assert report.missing_columns == ["Gender", "Recidivism_Within_3years"]
    assert "missing required column Gender" in report.lines()


def test_supervision_columns_may_be_left_out_only_when_not_asked_for(synthetic_raw, spec):
    """Evaluating the risk model needs no column recorded after release; training still does."""
    later = [c.name for c in spec.columns if c.known == "supervision"]
    without = synthetic_raw.drop(columns=later)
    _, strict = validate_records(without, spec)
    assert strict.missing_columns == later
    typed, report = validate_records(without, spec, supervision=False)
    assert report.ok, report.lines()
    assert typed[later].isna().all().all()
    _, no_outcome = validate_records(without.drop(columns=[spec.outcome.column]), spec, supervision=False)
    assert no_outcome.missing_columns == [spec.outcome.column]


def test_unknown_columns_are_reported_and_ignored(synthetic_raw, spec):
    typed, report = validate_records(synthetic_raw.assign(Shoe_Size="42"), spec)
    assert report.ok
    assert report.unknown_columns == ["Shoe_Size"]
    assert "ignored unknown columns: Shoe_Size" in report.lines()
    assert "Shoe_Size" not in typed
    assert report.ignored_columns_warnings("f.csv") == [
        "warning: f.csv has columns the spec does not declare, ignored: Shoe_Size; declare a column in the "
        "spec for the models to read it"
    ]
    assert validate_records(synthetic_raw, spec)[1].ignored_columns_warnings("f.csv") == []


def test_missing_outcome_and_duplicate_ids_are_problems(synthetic_raw, spec):
    raw = synthetic_raw.copy()
    raw.loc[raw.index[2], "Recidivism_Within_3years"] = pd.NA
    raw.loc[raw.index[4], "ID"] = raw.loc[raw.index[3], "ID"]
    _, report = validate_records(raw, spec)
    messages = [str(p) for p in report.problems]
    assert "row 3, column Recidivism_Within_3years: outcome is missing; it must be Yes or No" in messages
    assert any(m.startswith("row 5, column ID: id") and "more than once" in m for m in messages)


def test_rows_without_an_id_are_each_named_and_not_as_the_same_id(tmp_path, synthetic_raw, spec):
    """A blank id cell is an id left out, not an id shared by every row that leaves it out."""
    path = tmp_path / "records.csv"
    raw = synthetic_raw.copy()
    raw.loc[raw.index[[2, 5]], "ID"] = None
    raw.to_csv(path, index=False)
    _, report = validate_records(read_records(path), spec)
    assert [str(p) for p in report.problems] == [
        "row 4, column ID: id is missing",
        "row 7, column ID: id is missing",
    ]
    assert sorted(report.invalid_rows) == [4, 7]


def test_a_duplicate_id_names_the_row_that_holds_it_first(synthetic_raw, spec):
    """--drop-invalid keeps the first and rejects the others: the message says which row was kept,
    so a person can check it is the right record."""
    raw = synthetic_raw.copy()
    first = raw.loc[raw.index[3], "ID"]
    raw.loc[raw.index[[7, 9]], "ID"] = first
    _, report = validate_records(raw, spec)
    messages = [str(p) for p in report.problems]
    assert f"row 8, column ID: id '{first}' appears more than once (first in row 4)" in messages
    assert f"row 10, column ID: id '{first}' appears more than once (first in row 4)" in messages
    assert sorted(report.invalid_rows) == [8, 10], "the first row holding the id is kept, not rejected"


def test_a_value_wrong_down_a_column_is_one_line_and_the_next_column_still_shows(synthetic_raw, spec):
    """Problems were listed one row each, column by column, and the first 100 of them shown: a value
    an export wrote its own way in every row filled all 100 lines, hiding every other column's."""
    raw = synthetic_raw.assign(Gender="Q")
    raw.loc[raw.index[6], "Prison_Years"] = "forever"
    _, report = validate_records(raw, spec)
    assert report.n_problems == len(raw) + 1
    gender, prison = report.lines()
    assert gender.startswith(
        f"rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and {len(raw) - 10:,} more, column Gender: 'Q' is not allowed"
    )
    assert prison.startswith("row 7, column Prison_Years: 'forever' is not allowed")
    assert len(report.invalid_rows) == len(raw)


def test_problems_are_capped_with_a_count_of_the_rest(synthetic_raw, spec):
    raw = synthetic_raw.assign(Gender="Q")
    raw.loc[raw.index[[3, 5]], "Age_at_Release"] = "33"
    raw.loc[raw.index[6], "Prison_Years"] = "forever"
    _, report = validate_records(raw, spec, max_problems=2)
    assert len(report.problems) == 2
    assert report.n_problems == len(raw) + 3
    lines = report.lines()
    assert lines[1].startswith("rows 4 and 6, column Age_at_Release: '33' is not allowed")
    assert lines[2:] == ["... and 1 more problems"]


@pytest.mark.parametrize("word", ["yes", "YES", "True", "true", "1", "No", "FALSE", "0"])
def test_booleans_accept_any_case(synthetic_raw, spec, word):
    typed, report = validate_records(_broken(synthetic_raw, 1, "Condition_Other", word), spec)
    assert report.ok
    assert bool(typed["Condition_Other"].iloc[0]) is (word.lower() in ("yes", "true", "1"))


def test_unlabelled_records_need_only_release_columns(synthetic_raw, spec):
    release = [c for c in spec.inputs() if c in synthetic_raw] + spec.protected
    _, report = validate_records(synthetic_raw[release], spec, labelled=False)
    assert report.ok, report.lines()


def test_records_to_score_may_leave_out_protected_attributes(synthetic_raw, spec):
    release = [c for c in spec.inputs() if c in synthetic_raw]
    _, report = validate_records(synthetic_raw[release], spec, labelled=False)
    assert report.ok, report.lines()
    _, labelled = validate_records(synthetic_raw.drop(columns=spec.protected), spec)
    assert [p.message for p in labelled.problems] == ["missing required column Race"]


def test_an_optional_column_left_out_is_missing_in_every_row(synthetic_raw, spec):
    data = spec.model_dump(by_alias=True, exclude_none=True)
    for column in data["columns"]:
        if column["name"] in ("Education_Level", "Residence_Changes"):
            column["required"] = False
    optional = DatasetSpec.model_validate(data)
    typed, report = validate_records(
        synthetic_raw.drop(columns=["Education_Level", "Residence_Changes"]), optional
    )
    assert report.ok, report.lines()
    assert typed["Education_Level"].isna().all() and typed["Residence_Changes"].isna().all()
    assert list(typed["Education_Level"].cat.categories) == optional.column("Education_Level").order


def test_parquet_and_csv_read_alike(tmp_path, synthetic_raw, spec):
    csv, parquet = tmp_path / "r.csv", tmp_path / "r.parquet"
    synthetic_raw.to_csv(csv, index=False)
    synthetic_raw.to_parquet(parquet)
    from_csv, from_parquet = read_records(csv), read_records(parquet)
    pd.testing.assert_frame_equal(
        from_csv.reset_index(drop=True), from_parquet.reset_index(drop=True), check_dtype=False
    )
    assert (from_csv.index[0], from_parquet.index[0]) == (2, 1), "a CSV's line; a Parquet record's position"


def test_typed_parquet_values_are_understood(synthetic_raw, spec):
    raw = synthetic_raw.head(3).copy()
    typed_input = raw.astype(object)
    typed_input["Condition_Other"] = [True, False, True]
    typed_input["Residence_PUMA"] = [3.0, 4.0, 5.0]
    typed, report = validate_records(as_text(typed_input), spec)
    assert report.ok, report.lines()
    assert typed["Residence_PUMA"].tolist() == ["3", "4", "5"]


def test_unsupported_format_is_refused(tmp_path):
    path = tmp_path / "r.xlsx"
    path.write_text("x")
    with pytest.raises(ValueError, match=r"supported formats are \.csv, \.parquet"):
        read_records(path)


def test_records_invalid_carries_the_report(synthetic_raw, spec):
    _, report = validate_records(_broken(synthetic_raw, 2, "Gender", "?"), spec)
    error = RecordsInvalid(report)
    assert "1 problem(s)" in str(error) and "row 2, column Gender" in str(error)


@pytest.mark.parametrize(
    ("column", "cell", "read_as"),
    [
        ("Prior_Arrest_Episodes_Felony", "1.0", "1"),
        ("Prior_Arrest_Episodes_Felony", " 3.0 ", "3"),
        ("Residence_PUMA", "12.0", "12"),
        ("Condition_Other", "1.0", True),
        ("Condition_Other", "0.0", False),
    ],
)
def test_whole_number_floats_in_csv_read_as_integers(tmp_path, synthetic_raw, spec, column, cell, read_as):
    path = tmp_path / "r.csv"
    _broken(synthetic_raw, 1, column, cell).to_csv(path, index=False)
    typed, report = validate_records(read_records(path), spec)
    assert report.ok, report.lines()
    assert typed[column].iloc[0] == read_as


def test_a_header_only_file_has_no_records(tmp_path, synthetic_raw, spec):
    path = tmp_path / "header.csv"
    synthetic_raw.head(0).to_csv(path, index=False)
    _, report = validate_records(read_records(path), spec)
    assert report.lines() == ["the file has no records: it needs at least one row after the header"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "latin.csv",
            b"ID,Gender\n1,caf\xe9\n",
            r"latin.csv is not UTF-8 text \(line 2 has byte 0xe9\); save it as UTF-8 \(in Excel: Save As",
        ),
        ("empty.csv", b"", "empty.csv is empty: it holds no records"),
        ("blank.csv", b"\n\n", "blank.csv is empty: it holds no records"),
        (
            "bad.jsonl",
            b'{"ID": "1"}\n\n{"ID": nope}\n',
            r"bad.jsonl, line 3: not valid JSON \(Expecting value",
        ),
        ("bad.json", b'[{"ID": "1"},\n {"ID": nope}]', r"bad.json, line 2: not valid JSON"),
        (
            "twice.jsonl",
            b'{"ID": "1", "Gender": "M"}\n\n{"ID": "2", "Gender": "F", "Gender": "M"}\n',
            "twice.jsonl, line 3: the record names 'Gender' more than once; keep one",
        ),
        (
            "twice.json",
            b'[{"ID": "1", "ID": "2"}]',
            "twice.json: a record names 'ID' more than once; keep one",
        ),
        (
            "scalar.json",
            b'"x"',
            "scalar.json does not hold JSON records: a .json file holds an array of objects",
        ),
        ("semi.csv", b"ID;Gender\n1;M\n", "semi.csv looks semicolon-separated .*CSV must be comma-separated"),
        ("tab.csv", b"ID\tGender\n1\tM\n", "tab.csv looks tab-separated"),
        ("bad.parquet", b"not parquet", "bad.parquet is not a readable Parquet file"),
        ("wide.csv", b"ID,Gender\n1,M,extra\n2,F\n", "wide.csv .*line 2 has 3 fields but the header names 2"),
        (
            "wider.csv",
            b"ID,Gender\n1,M\n2,F,extra\n",
            "wider.csv .*line 3 has 3 fields but the header names 2",
        ),
        (
            "wider_later.csv",
            b'ID,Gender\n\n"1\n",M\n\n2,F,extra\n',
            "wider_later.csv .*line 6 has 3 fields but the header names 2",
        ),
        (
            "unclosed.csv",
            b'ID,Gender\n\n1,M\n2,"F\n3,M\n',
            "unclosed.csv is not a valid CSV file: the row on line 4 opens a quoted cell .* never closed",
        ),
        (
            "short.csv",
            b"ID,Gender,Age\n1,M,30\n\n2,F\n",
            "short.csv .*line 4 has 2 fields but the header names 3",
        ),
        (
            "twice.csv",
            b"ID,NEET,NEET\n1,Y,N\n",
            "twice.csv is not a valid CSV file: the header names 'NEET' more than once; keep one",
        ),
    ],
)
def test_unreadable_files_are_named_with_what_to_do(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_records(path)


@pytest.mark.parametrize("name", ["Gender", ""])
def test_a_parquet_column_named_twice_is_one_line_as_in_csv_and_json(tmp_path, name):
    """pyarrow refused it with its whole schema: 54 lines of internal fields on the NIJ layout."""
    path = tmp_path / "twice.parquet"
    pq.write_table(pa.table([["1", "2"], ["M", "F"], ["F", "M"]], names=["ID", name, name]), path)
    with pytest.raises(ValueError) as refused:
        read_records(path)
    assert str(refused.value) == (
        f"{path} is not a readable Parquet file: its schema names {name!r} more than once; keep one"
    )


def test_a_header_that_differs_only_in_case_or_spaces_is_named(synthetic_raw, spec):
    """Cells match ignoring case; headers must not silently fail to: the column would be all missing."""
    raw = synthetic_raw.head(20).rename(
        columns={"Prison_Years": "prison_years", "Gang_Affiliated": " Gang_Affiliated"}
    )
    _, report = validate_records(raw, spec)
    lines = report.lines()
    assert (
        "column header 'prison_years' should be 'Prison_Years': headers must match the spec exactly" in lines
    )
    assert (
        "column header ' Gang_Affiliated' should be 'Gang_Affiliated': headers must match the spec exactly"
        in lines
    )
    both = synthetic_raw.head(20).assign(prison_years="x")
    assert validate_records(both, spec)[1].ok, "an extra column beside the exact one is only ignored"


def test_a_cell_longer_than_the_csv_modules_limit_is_read(tmp_path, free_text_raw, free_text_spec):
    """Python's csv module refuses a field over 128 KiB by default; pandas reads it, so the file is fine."""
    long = "x" * 200_000
    path = tmp_path / "long.csv"
    free_text_raw.head(3).assign(employer=long).to_csv(path, index=False)
    raw = read_records(path)
    assert raw["employer"].tolist() == [long] * 3
    assert validate_records(raw, free_text_spec)[1].ok


HEADER = "pid,age,employed,offence,employer,rearrested"
GOOD, BAD = "1,30,Yes,other,a,No", "2,31,No,piracy,b,Yes"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (f"{HEADER}\n{GOOD}\n{BAD}\n", 3),
        (f"{HEADER}\n\n{GOOD}\n  \n{BAD}\n", 5),
        (f"\r\n{HEADER}\r\n{GOOD}\r\n{BAD}\r\n", 4),
        (f'{HEADER}\n1,30,Yes,other,"a,\nb",No\n{BAD}\n', 4),
        (f"{HEADER}\n{GOOD}\n,,,,,\n{BAD}\n,,,,,\n ,,,\t,,\n", 4),
    ],
    ids=[
        "plain",
        "blank lines",
        "CRLF after a blank first line",
        "a quoted cell over two lines",
        "rows of separators only, as spreadsheets export emptied rows",
    ],
)
def test_a_csv_problem_names_the_line_an_editor_shows(tmp_path, free_text_spec, content, line):
    """Blank lines count and the header is line 1, so 'row N' is line N in an editor and row N in a
    spreadsheet (which shows a quoted two-line cell in one row, one above the editor's line)."""
    path = tmp_path / "records.csv"
    path.write_bytes(content.encode())
    _, report = validate_records(read_records(path), free_text_spec)
    assert [str(p).split(":")[0] for p in report.problems] == [f"row {line}, column offence"]
    assert list(report.invalid_rows) == [line]


def test_a_jsonl_problem_names_its_line(tmp_path, free_text_spec):
    records = [dict(zip(HEADER.split(","), row.split(","), strict=True)) for row in (GOOD, BAD)]
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n")
    _, report = validate_records(read_records(path), free_text_spec)
    assert list(report.invalid_rows) == [3]


def test_a_long_bad_value_is_shortened_in_its_message(synthetic_raw, spec):
    """A cell that swallowed a paragraph (or a whole row, after a stray quote) must not flood the report."""
    long = "x" * 10_000
    _, report = validate_records(_broken(synthetic_raw, 3, "Gender", long), spec)
    (problem,) = report.problems
    assert problem.value == long
    assert str(problem).startswith(f"row 3, column Gender: '{'x' * 60}...' (10000 characters) is not allowed")
    assert len(str(problem)) < 200


def test_a_jsonl_value_may_hold_a_unicode_line_separator(tmp_path):
    """JSON allows U+2028 raw inside a string (write_records writes it so): it ends no line."""
    path = tmp_path / "records.jsonl"
    path.write_text('{"ID": "1", "Note": "a\u2028b"}\n{"ID": "2", "Note": "c"}\n', encoding="utf-8")
    assert read_records(path)["Note"].tolist() == ["a\u2028b", "c"]


@pytest.mark.parametrize("name", ["records.json", "records.jsonl"])
def test_json_with_a_byte_order_mark_is_read_as_csv_is(tmp_path, name):
    """Windows tools write UTF-8 with a BOM; a CSV with one was read, JSON was refused."""
    records = '{"ID": "1", "Gender": "M"}\n{"ID": "2", "Gender": "F"}\n'
    text = records if name.endswith(".jsonl") else "[" + records.replace("}\n{", "},\n{") + "]"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8-sig")
    assert read_records(path)["Gender"].tolist() == ["M", "F"]


def test_trailing_empty_columns_of_a_spreadsheet_export_are_ignored(tmp_path, free_text_raw, free_text_spec):
    """Excel writes a column whose cells were once formatted as an empty header and empty cells:
    two of them are not a header named twice."""
    path = tmp_path / "export.csv"
    lines = free_text_raw.head(3).to_csv(index=False).splitlines()
    path.write_text("".join(line + ",,\n" for line in lines))
    _, report = validate_records(read_records(path), free_text_spec)
    assert report.ok, report.lines()
    assert report.unknown_columns == ["column 7 (no header)", "column 8 (no header)"]
