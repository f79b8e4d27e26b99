"""The features command line, run the way a data scientist runs it."""

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from features.cli import app
from tests.commands import run_in_process

EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "docs" / "examples" / "county_probation.yaml"


def _features(*args: str) -> subprocess.CompletedProcess:
    """`python -m features ARGS` in this process (test_other_layout runs it as a process of its own)."""
    return run_in_process(app, "features", *args)


def test_validate_prints_a_json_summary(synthetic_csv):
    result = _features("validate", "--spec", "georgia_parole", "--data", str(synthetic_csv))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 2000
    assert 0.4 < summary["outcome_base_rate"] < 0.75
    assert set(summary["need_prevalence"]) == {
        "employment",
        "housing",
        "substance_use",
        "treatment",
        "education",
        "compliance",
    }
    assert summary["missing_values"]["Gang_Affiliated"] > 0


def test_validate_exits_2_naming_every_problem(tmp_path, synthetic_raw):
    broken = synthetic_raw.drop(columns=["Gender"])
    broken.loc[broken.index[6], "Prison_Years"] = "forever"
    path = tmp_path / "broken.csv"
    broken.to_csv(path, index=False)
    result = _features("validate", "--spec", "georgia_parole", "--data", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "missing required column Gender" in result.stderr
    assert "row 8, column Prison_Years: 'forever' is not allowed" in result.stderr


def test_a_saved_row_index_is_named_by_its_place_and_ignored(tmp_path, synthetic_raw):
    """pandas' to_csv keeps the index as a first column with an empty header, which validate called
    'Unnamed: 0', a name the file nowhere holds; read back and saved again it made 'Unnamed: 0.1'."""
    path = tmp_path / "indexed.csv"
    synthetic_raw.to_csv(path)
    result = _features("validate", "--spec", "georgia_parole", "--data", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "ignored unknown columns: column 1 (no header)\n"
    assert json.loads(result.stdout)["ignored_columns"] == ["column 1 (no header)"]
    again = tmp_path / "indexed_again.csv"
    pd.read_csv(path, dtype=str, keep_default_na=False).to_csv(again)
    result = _features("validate", "--spec", "georgia_parole", "--data", str(again))
    assert result.stderr == "ignored unknown columns: column 1 (no header), Unnamed: 0\n"


def test_drop_invalid_keeps_valid_rows_and_writes_the_rejected(tmp_path, synthetic_raw):
    broken = synthetic_raw.copy()
    broken.loc[broken.index[[2, 9]], "Gender"] = "?"
    path, side = tmp_path / "broken.csv", tmp_path / "rejected.csv"
    broken.to_csv(path, index=False)
    strict = _features("validate", "--spec", "georgia_parole", "--data", str(path))
    assert strict.returncode == 2
    valid = tmp_path / "valid.parquet"
    result = _features(
        "validate",
        "--spec",
        "georgia_parole",
        "--data",
        str(path),
        "--drop-invalid",
        "--rejected",
        str(side),
        "--valid-out",
        str(valid),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == len(broken) - 2
    rejected = pd.read_csv(side, dtype=str)
    assert rejected["_row"].tolist() == ["4", "11"]  # lines of the file: the header is line 1
    assert rejected["_reasons"].str.contains("column Gender: '\\?' is not allowed").all()
    assert f"wrote {len(broken) - 2} valid row(s) to {valid}" in result.stderr
    clean = _features("validate", "--spec", "georgia_parole", "--data", str(valid))
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["rows"] == len(broken) - 2


def test_valid_out_never_overwrites_the_data(synthetic_csv):
    before = synthetic_csv.read_bytes()
    args = ("validate", "--spec", "georgia_parole", "--data", str(synthetic_csv))
    result = _features(*args, "--valid-out", str(synthetic_csv))
    assert result.returncode == 2 and "--valid-out must name a new file" in result.stderr
    assert synthetic_csv.read_bytes() == before


def one_bad_gender(synthetic_raw, tmp_path) -> Path:
    """The cohort as a CSV file whose third record holds a Gender the spec does not allow."""
    broken = synthetic_raw.copy()
    broken.loc[broken.index[2], "Gender"] = "?"
    path = tmp_path / "broken.csv"
    broken.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("valid_out", "rejected", "message"),
    [
        (None, "broken.csv", "--rejected must name a new file, not the data file itself"),
        ("out.csv", "out.csv", "--valid-out and --rejected must name different files"),
        ("broken.csv.rejected.csv", None, "--valid-out and --rejected must name different files"),
    ],
    ids=["rejected is the data", "both the same", "valid-out is the default side file"],
)
def test_no_output_overwrites_the_data_or_the_other_output(
    tmp_path, synthetic_raw, valid_out, rejected, message
):
    path = one_bad_gender(synthetic_raw, tmp_path)
    before = path.read_bytes()
    args = ["validate", "--spec", "georgia_parole", "--data", str(path), "--drop-invalid"]
    args += ["--valid-out", str(tmp_path / valid_out)] if valid_out else []
    args += ["--rejected", str(tmp_path / rejected)] if rejected else []
    result = _features(*args)
    assert result.returncode == 2 and message in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("option", ["--valid-out", "--rejected"])
def test_an_output_format_that_cannot_be_read_back_is_refused_before_anything_is_written(
    tmp_path, synthetic_raw, option
):
    path = one_bad_gender(synthetic_raw, tmp_path)
    args = ("validate", "--spec", "georgia_parole", "--data", str(path), "--drop-invalid")
    result = _features(*args, option, str(tmp_path / "out.xlsx"))
    assert result.returncode == 2
    out = tmp_path / "out.xlsx"
    assert f"cannot write {out}: supported formats are .csv, .parquet, .json, .jsonl" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv"]


def test_a_header_only_file_is_refused(tmp_path, synthetic_raw):
    path = tmp_path / "header.csv"
    synthetic_raw.head(0).to_csv(path, index=False)
    for extra in ((), ("--drop-invalid",)):
        result = _features("validate", "--spec", "georgia_parole", "--data", str(path), *extra)
        assert result.returncode == 2
        assert result.stdout == ""
        assert "the file has no records" in result.stderr


def test_drop_invalid_that_rejects_every_row_writes_no_valid_file(tmp_path, synthetic_raw):
    """An empty file of valid rows would pass on as a dataset: refused, with every row in the side file."""
    path, side, valid = tmp_path / "broken.csv", tmp_path / "broken.csv.rejected.csv", tmp_path / "valid.csv"
    synthetic_raw.iloc[:3].assign(Gender="?").to_csv(path, index=False)
    result = _features(
        "validate",
        "--spec",
        "georgia_parole",
        "--data",
        str(path),
        "--drop-invalid",
        "--valid-out",
        str(valid),
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "rows 2, 3 and 4, column Gender: '?' is not allowed; allowed: one of 'M', 'F'\n"
        f"rejected 3 row(s), written to {side}\n{path}: no valid row left; nothing was kept\n"
    )
    assert pd.read_csv(side, dtype=str)["_row"].tolist() == ["2", "3", "4"]
    assert not valid.exists()


def test_drop_invalid_refuses_a_file_whose_problem_is_no_row(tmp_path, free_text_spec, free_text_raw):
    """A misspelt header of an optional column leaves it missing in every row: dropping rows fixes
    nothing, so the file is refused rather than passed on with the column silently empty."""
    layout = free_text_spec.model_dump(by_alias=True, exclude_none=True)
    layout["columns"][-1]["required"] = False
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(layout))
    path, valid = tmp_path / "records.csv", tmp_path / "valid.csv"
    free_text_raw.rename(columns={"employer": "Employer"}).to_csv(path, index=False)
    result = _features(
        "validate", "--spec", str(spec), "--data", str(path), "--drop-invalid", "--valid-out", str(valid)
    )
    assert result.returncode == 2, result.stdout
    assert "column header 'Employer' should be 'employer'" in result.stderr
    assert "dropping rows cannot fix" in result.stderr
    assert not valid.exists()


def _refuse_nan(constant: str) -> None:
    raise AssertionError(f"{constant} is not valid JSON")


def test_a_rate_over_no_known_label_is_null(tmp_path, synthetic_raw):
    path = tmp_path / "untreated.csv"
    synthetic_raw.assign(Condition_MH_SA=pd.NA).to_csv(path, index=False)
    result = _features("validate", "--spec", "georgia_parole", "--data", str(path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout, parse_constant=_refuse_nan)
    assert summary["need_prevalence"]["treatment"] == {"prevalence": None, "known": 0}


def test_an_unreadable_file_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("ID;Gender\n1;M\n")
    result = _features("validate", "--spec", "georgia_parole", "--data", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path} looks semicolon-separated (its header has ';' and no ','); records CSV must be "
        "comma-separated: export it again with ',' as the separator"
    ]


def test_unknown_spec_exits_2():
    result = _features("validate", "--spec", "atlantis", "--data", "x.csv")
    assert result.returncode == 2
    assert "unknown spec 'atlantis'" in result.stderr


@pytest.mark.parametrize("command", ["validate", "synth"])
def test_a_spec_folder_is_named_as_a_folder(command, tmp_path):
    out = str(tmp_path / "o.csv")
    extra = ("--data", "x.csv") if command == "validate" else ("--rows", "5", "--out", out)
    result = _features(command, "--spec", str(tmp_path), *extra)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"spec {tmp_path} is a folder; give a built-in spec name (georgia_parole) or the path of a "
        "spec YAML file (.yaml or .yml)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--seed", "-1", "--out", "{tmp}/o.csv"),
            "Invalid value for '--seed': Input should be greater than or equal to 0",
        ),
        (("--out", "{tmp}/folder.csv"), "folder.csv"),
    ],
    ids=["negative seed", "out is a folder"],
)
def test_synth_refuses_what_it_cannot_do_in_one_message(tmp_path, args, message):
    (tmp_path / "folder.csv").mkdir()
    result = _features(
        "synth", "--spec", "georgia_parole", "--rows", "5", *(a.format(tmp=tmp_path) for a in args)
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("valid_out", "rejected", "message"),
    [
        (
            "broken.csv/clean.csv",
            "rej.csv",
            "--valid-out: cannot write {tmp}/broken.csv/clean.csv: {tmp}/broken.csv is a file, not a folder",
        ),
        (
            "new/clean.csv",
            "broken.csv/x/rej.csv",
            "--rejected: cannot write {tmp}/broken.csv/x/rej.csv: {tmp}/broken.csv is a file, not a folder",
        ),
        (
            "folder.csv",
            "rej.csv",
            "--valid-out: cannot write {tmp}/folder.csv: it is a folder; name a file in it",
        ),
        (
            "clean.csv",
            None,
            "--rejected (default): cannot write {tmp}/broken.csv.rejected.csv: "
            "it is a folder; name a file in it",
        ),
    ],
    ids=[
        "valid-out under a file",
        "rejected under a file",
        "valid-out a folder",
        "default side file a folder",
    ],
)
def test_an_output_that_cannot_be_written_is_named_before_either_is_written(
    tmp_path, synthetic_raw, valid_out, rejected, message
):
    """The rejected file was written, then the valid one failed ('[Errno 17] File exists'): half a result."""
    path = one_bad_gender(synthetic_raw, tmp_path)
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "broken.csv.rejected.csv").mkdir()
    args = ["validate", "--spec", "georgia_parole", "--data", str(path), "--drop-invalid"]
    args += ["--valid-out", str(tmp_path / valid_out)]
    args += ["--rejected", str(tmp_path / rejected)] if rejected else []
    result = _features(*args)
    assert result.returncode == 2
    assert result.stderr == message.format(tmp=tmp_path) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "broken.csv",
        "broken.csv.rejected.csv",
        "folder.csv",
    ]


def test_an_output_in_a_folder_closed_to_the_user_is_refused_before_anything_is_written(
    tmp_path, synthetic_raw, monkeypatch
):
    """Faked: the suite may run as root, whom no permission stops."""
    path, closed = one_bad_gender(synthetic_raw, tmp_path), tmp_path / "closed"
    closed.mkdir()
    monkeypatch.setattr(os, "access", lambda where, mode: Path(where) != closed)
    args = ("validate", "--spec", "georgia_parole", "--data", str(path), "--drop-invalid")
    result = _features(
        *args, "--rejected", str(tmp_path / "rej.csv"), "--valid-out", str(closed / "sub/v.csv")
    )
    assert result.returncode == 2
    assert (
        result.stderr
        == f"--valid-out: cannot write {closed}/sub/v.csv: folder {closed} is read-only to you\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv", "closed"]


def test_a_read_only_output_file_is_refused_before_anything_is_written(tmp_path, synthetic_raw, monkeypatch):
    """Faked as above: the suite may run as root. The file is left as it was, and no side file is made."""
    path, kept = one_bad_gender(synthetic_raw, tmp_path), tmp_path / "kept.csv"
    kept.write_text("earlier results\n")
    monkeypatch.setattr(os, "access", lambda where, mode: Path(where) != kept or not mode & os.W_OK)
    args = ("validate", "--spec", "georgia_parole", "--data", str(path), "--drop-invalid")
    result = _features(*args, "--rejected", str(tmp_path / "rej.csv"), "--valid-out", str(kept))
    assert (result.returncode, result.stderr) == (
        2,
        f"--valid-out: cannot write {kept}: the file is read-only to you\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv", "kept.csv"]
    assert kept.read_text() == "earlier results\n"


def test_a_rejected_file_that_cannot_be_written_is_one_message(tmp_path, synthetic_raw):
    path, side = one_bad_gender(synthetic_raw, tmp_path), tmp_path / "side.csv"
    side.mkdir()
    args = (
        "validate",
        "--spec",
        "georgia_parole",
        "--data",
        str(path),
        "--drop-invalid",
        "--rejected",
        str(side),
    )
    result = _features(*args)
    assert result.returncode == 2
    assert "side.csv" in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr


def test_a_rejected_file_without_drop_invalid_is_refused_not_ignored(tmp_path, synthetic_raw):
    """`--rejected side.csv` alone exited 2 for the bad rows and wrote no side file, without a word why."""
    path, side = one_bad_gender(synthetic_raw, tmp_path), tmp_path / "side.csv"
    result = _features("validate", "--spec", "georgia_parole", "--data", str(path), "--rejected", str(side))
    assert result.returncode == 2
    assert result.stderr == (
        "--rejected names the side file of --drop-invalid: add --drop-invalid, or leave --rejected out\n"
    )
    assert not side.exists()


def test_synth_is_byte_identical_for_a_seed_and_validates(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    for out in (first, second):
        args = (
            "synth",
            "--spec",
            "georgia_parole",
            "--rows",
            "500",
            "--seed",
            "3",
            "--out",
            str(out),
        )
        assert _features(*args).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    assert _features("validate", "--spec", "georgia_parole", "--data", str(first)).returncode == 0


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json"])
def test_synth_writes_the_format_its_file_name_asks_for(tmp_path, suffix):
    out = tmp_path / f"cohort{suffix}"
    made = _features("synth", "--spec", "georgia_parole", "--rows", "300", "--seed", "1", "--out", str(out))
    assert made.returncode == 0, made.stderr
    checked = _features("validate", "--spec", "georgia_parole", "--data", str(out))
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["rows"] == 300


@pytest.mark.parametrize("spec", ["georgia_parole", str(EXAMPLE_SPEC)])
@pytest.mark.parametrize("rows", ["0", "-3"])
def test_synth_refuses_a_count_of_no_people(tmp_path, spec, rows):
    """Refused for both generators by the option, before either runs: no empty cohort is written."""
    out = tmp_path / "cohort.csv"
    made = _features("synth", "--spec", spec, "--rows", rows, "--out", str(out))
    assert made.returncode == 2
    assert "Invalid value for '--rows': Input should be greater than or equal to 1" in made.stderr
    assert not out.exists()


def test_unsupported_output_and_folders_are_named(tmp_path):
    out = tmp_path / "c.xlsx"
    made = _features("synth", "--spec", "georgia_parole", "--rows", "10", "--out", str(out))
    assert made.returncode == 2 and f"cannot write {out}: supported formats are .csv" in made.stderr
    assert not out.exists()
    folder = _features("validate", "--spec", "georgia_parole", "--data", str(tmp_path))
    assert folder.returncode == 2 and f"{tmp_path} is a folder; give the data file itself" in folder.stderr


@pytest.mark.real_data
def test_real_file_validates_with_its_base_rate(real_data_path):
    result = _features("validate", "--spec", "georgia_parole", "--data", str(real_data_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 19333
    assert summary["outcome_base_rate"] == pytest.approx(0.575, abs=0.005)


@pytest.mark.real_data
def test_real_file_with_two_problems_exits_2(tmp_path, real_data_path):
    lines = real_data_path.read_text().splitlines()
    header = lines[0].split(",")
    gender, years = header.index("Gender"), header.index("Prison_Years")
    rows = [line.split(",") for line in lines]
    rows[7][years] = "forever"
    rows = [[cell for i, cell in enumerate(row) if i != gender] for row in rows]
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    result = _features("validate", "--spec", "georgia_parole", "--data", str(path))
    assert result.returncode == 2
    assert "missing required column Gender" in result.stderr
    assert "row 8, column Prison_Years: 'forever' is not allowed" in result.stderr
