"""Reading assessment-record files into text cells, whatever the file format."""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

READERS = (".csv", ".parquet", ".json", ".jsonl")
SEPARATORS = {";": "semicolon", "\t": "tab"}
LARGEST_CELL = 2**31 - 1  # the csv module's own default is 128 KiB, which pandas does not impose


def read_records(path: str | Path) -> pd.DataFrame:
    """Read CSV, Parquet or JSON records as text cells, so validation sees the raw values.

    A file that cannot be read raises ValueError naming the file and what to do about it.
    """
    path = Path(path)
    _check_readable(path)
    try:
        frame = _read(path)
    except UnicodeDecodeError as exc:
        raise ValueError(_not_utf8(path)) from exc
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path} is empty: it holds no records") from exc
    except ValueError as exc:  # pandas' parser, JSON and Parquet errors
        raise ValueError(_unreadable(path, exc)) from exc
    _check_separator(frame, path)
    return as_text(frame)


def _check_readable(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the data file itself")
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    if path.suffix.lower() not in READERS:
        raise ValueError(f"cannot read {path.name}: supported formats are {', '.join(READERS)}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty: it holds no records")


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # index_col=False: a row longer than the header must not turn its first cell into an index
        # and shift every value one column left; pandas only warns, so the warning is an error.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], index_col=False)
            except pd.errors.ParserWarning as exc:
                _check_csv_shape(path)  # names the long row
                raise ValueError(str(exc)) from exc
        _check_csv_shape(path)
        return frame
    if suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=suffix == ".jsonl", dtype=False)


def _check_csv_shape(path: Path) -> None:
    """pandas renames a repeated header (x, x.1), pads a short row with missing values and warns
    on a long one: each would be read wrong, so each is an error naming where."""
    with path.open(newline="", encoding="utf-8-sig") as handle, _cells_of_any_size():
        rows = csv.reader(handle)
        header = next(rows)
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise ValueError(f"the header names {', '.join(map(repr, repeated))} more than once; keep one")
        for row in rows:
            if any(cell.strip() for cell in row) and len(row) != len(header):
                raise ValueError(
                    f"line {rows.line_num} has {len(row)} fields but the header names {len(header)} columns"
                )


@contextmanager
def _cells_of_any_size() -> Iterator[None]:
    """Lift the csv module's process-wide cell limit while checking: a long cell pandas read is fine."""
    limit = csv.field_size_limit(LARGEST_CELL)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _not_utf8(path: Path) -> str:
    """Where the first non-UTF-8 byte is: pandas reports a position inside its own read buffer."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        where = f" (line {line} has byte {data[exc.start]:#04x})"
    else:
        where = ""
    excel = " (in Excel: Save As 'CSV UTF-8')" if path.suffix.lower() == ".csv" else ""
    return f"{path} is not UTF-8 text{where}; save it as UTF-8{excel} and try again"


def _unreadable(path: Path, error: ValueError) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return f"{path} is not a valid CSV file: {error}"
    if suffix == ".parquet":
        return f"{path} is not a readable Parquet file: {error}"
    return _json_problem(path, lines=suffix == ".jsonl") or (
        f"{path} does not hold JSON records: a .json file holds an array of objects, "
        f"a .jsonl file one object per line ({error})"
    )


def _json_problem(path: Path, lines: bool) -> str | None:
    """The first line the json module cannot parse, which pandas' own reader does not say."""
    text = path.read_text(encoding="utf-8")
    chunks = enumerate(text.splitlines(), start=1) if lines else [(1, text)]
    for first_line, chunk in chunks:
        if not chunk.strip():
            continue
        try:
            json.loads(chunk)
        except json.JSONDecodeError as exc:
            line = first_line + exc.lineno - 1
            return f"{path}, line {line}: not valid JSON ({exc.msg} at column {exc.colno})"
    return None


def _check_separator(frame: pd.DataFrame, path: Path) -> None:
    """A one-column CSV whose header holds ';' or a tab was written with another separator."""
    if path.suffix.lower() != ".csv" or frame.shape[1] != 1:
        return
    header = str(frame.columns[0])
    for separator, word in SEPARATORS.items():
        if separator in header:
            raise ValueError(
                f"{path} looks {word}-separated (its header has {separator!r} and no ','); "
                "records CSV must be comma-separated: export it again with ',' as the separator"
            )


def check_writable(path: Path) -> Path:
    """Refuse a file name whose format read_records could not read back, before any work is done."""
    if path.suffix.lower() not in READERS:
        raise ValueError(f"cannot write {path.name}: supported formats are {', '.join(READERS)}")
    return path


def write_records(frame: pd.DataFrame, path: str | Path) -> None:
    """Write records in the format the file name asks for, one that read_records reads back."""
    path = check_writable(Path(path))
    suffix = path.suffix.lower()
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
