"""Reading assessment-record files into text cells, whatever the file format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

READERS = (".csv", ".parquet", ".json", ".jsonl")


def read_records(path: str | Path) -> pd.DataFrame:
    """Read CSV, Parquet or JSON records as text cells, so validation sees the raw values."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the data file itself")
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    elif suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix in (".json", ".jsonl"):
        frame = pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
    else:
        raise ValueError(f"cannot read {path.name}: supported formats are {', '.join(READERS)}")
    return as_text(frame)


def write_records(frame: pd.DataFrame, path: str | Path) -> None:
    """Write records in the format the file name asks for, one that read_records reads back."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise ValueError(f"cannot write {path.name}: supported formats are {', '.join(READERS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=suffix == ".jsonl", force_ascii=False)


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as stripped strings, whole-number floats without '.0', blanks as missing."""
    return frame.apply(lambda column: column.map(_cell_text, na_action="ignore")).astype("str")


def _cell_text(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text if text else pd.NA
