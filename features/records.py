"""Reading assessment-record files into text cells, whatever the file format."""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

READERS = (".csv", ".parquet", ".json", ".jsonl")
SEPARATORS = {";": "semicolon", "\t": "tab"}
# The index of read_records' frame: each record's row as the user sees the file, for messages.
FILE_ROW = "file_row"
LARGEST_CELL = 2**31 - 1  # the csv module's own default is 128 KiB, which pandas does not impose


def read_records(path: str | Path) -> pd.DataFrame:
    """Read CSV, Parquet or JSON records as text cells, so validation sees the raw values.

    A file that cannot be read raises ValueError naming the file and what to do about it.
    """
    path = Path(path)
    check_readable(path)
    try:
        frame, rows = _read(path)
        frame.index = pd.Index(rows, name=FILE_ROW)
    except UnicodeDecodeError as exc:
        raise ValueError(_not_utf8(path)) from exc
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path} is empty: it holds no records") from exc
    except ValueError as exc:  # pandas' parser, JSON and Parquet errors
        raise ValueError(_unreadable(path, exc)) from exc
    _check_separator(frame, path)
    return as_text(frame)


def check_readable(path: Path) -> None:
    """Refuse, in one line, a path that is no records file (missing, a folder, another format, empty)."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the data file itself")
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    if path.suffix.lower() not in READERS:
        raise ValueError(f"cannot read {path}: supported formats are {', '.join(READERS)}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty: it holds no records")


def _read(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The records, and where each is as the user sees the file: its line in a CSV (the header is
    line 1, as a spreadsheet numbers rows) or a JSON Lines file; its position, from 1, in JSON and
    Parquet."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # index_col=False: a row longer than the header must not turn its first cell into an index
        # and shift every value one column left; pandas only warns, so the warning is an error.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], index_col=False)
            except (pd.errors.ParserWarning, pd.errors.ParserError) as exc:
                # pandas counts lines without blank ones or those inside quoted cells: name the line here
                if "EOF inside string" in str(exc):
                    raise ValueError(_unclosed_quote(path)) from exc
                _csv_rows(path)
                raise ValueError(str(exc)) from exc
        header, rows = _csv_rows(path)
        frame.columns = [
            blank_header(number) if not name.strip() else column
            for number, (name, column) in enumerate(zip(header, frame.columns, strict=True), start=1)
        ]
        # A row of separators only is how a spreadsheet exports a row it once held: a blank line.
        filled = frame.apply(lambda cells: cells.str.strip().ne("") & cells.notna()).any(axis=1).to_numpy()
        return frame[filled], [row for row, keep in zip(rows, filled, strict=True) if keep]
    if suffix == ".parquet":
        _check_unique(_parquet_columns(path), "its schema")  # pyarrow refuses it with its whole schema
        frame = pd.read_parquet(path)
        return frame, list(range(1, len(frame) + 1))
    text, lines = _json_text(path), suffix == ".jsonl"
    problem = _json_problem(path, text, lines)  # pandas keeps a repeated key's last value
    if problem:
        raise ValueError(problem)
    frame = pd.read_json(io.StringIO(text), lines=lines, dtype=False)
    if lines:  # as pandas splits them
        return frame, [number for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    return frame, list(range(1, len(frame) + 1))


def _parquet_columns(path: Path) -> list[str]:
    """The column names a Parquet file holds, read from its footer alone."""
    import pyarrow.parquet as pq  # as pandas does, only when a Parquet file is read

    return pq.read_schema(path).names


def _json_text(path: Path) -> str:
    """A JSON file's text without the byte-order mark Windows tools write, which pandas refuses."""
    return path.read_text(encoding="utf-8-sig")


def _csv_rows(path: Path) -> tuple[list[str], list[int]]:
    """The header and the line each record starts on, after checking the shape: pandas renames a
    repeated header (x, x.1), pads a short row with missing values and warns on a long one, so each is
    an error."""
    (_, header), *records = _csv_records(path)
    _check_header(header)
    for start, row in records:
        if any(cell.strip() for cell in row) and len(row) != len(header):
            raise ValueError(f"line {start} has {len(row)} fields but the header names {len(header)} columns")
    return header, [start for start, _ in records]


def blank_header(number: int) -> str:
    """A column without a header (a row index pandas saved with the data, a spreadsheet's stray
    column) by its place, from 1: pandas would call it 'Unnamed: N', a name the file nowhere holds."""
    return f"column {number} (no header)"


def _csv_records(path: Path) -> list[tuple[int, list[str]]]:
    """Each record, header first, with the line it starts on: blank lines hold no record (pandas
    skips them) but count, as in an editor or a spreadsheet."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        lines = handle.readlines()
    records = []
    with _cells_of_any_size():
        rows, end = csv.reader(lines), 0
        for row in rows:
            start, end = end + 1, rows.line_num
            if start < end or lines[start - 1].strip(" \t\r\n"):
                records.append((start, row))
    return records


def _unclosed_quote(path: Path) -> str:
    """A quote never closed takes the rest of the file into one cell: the last record holds it."""
    line, _ = _csv_records(path)[-1]
    return f'the row on line {line} opens a quoted cell (") that is never closed; close or remove that quote'


def _check_header(header: list[str]) -> None:
    """Blank names are columns left without a header (see blank_header); they may repeat."""
    _check_unique([name for name in header if name.strip()], "the header")


def _check_unique(names: list[str], where: str) -> None:
    """A column named twice is refused, as a JSON record naming a key twice is: which one is meant?"""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{where} names {', '.join(map(repr, repeated))} more than once; keep one")


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
    excel = " (in Excel: Save As 'CSV UTF-8')" if path.suffix.lower() == ".csv" else ""
    return (
        f"{path} is not UTF-8 text{first_bad_byte(path.read_bytes())}; save it as UTF-8{excel} and try again"
    )


def first_bad_byte(data: bytes) -> str:
    """Where a text's first byte that is not UTF-8 is, as " (line 3 has byte 0xe9)"; empty if none."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return f" (line {line} has byte {data[exc.start]:#04x})"
    return ""


def _unreadable(path: Path, error: ValueError) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return f"{path} is not a valid CSV file: {error}"
    if suffix == ".parquet":
        return f"{path} is not a readable Parquet file: {error}"
    return _json_problem(path, _json_text(path), lines=suffix == ".jsonl") or (
        f"{path} does not hold JSON records: a .json file holds an array of objects, "
        f"a .jsonl file one object per line ({error})"
    )


def _json_problem(path: Path, text: str, lines: bool) -> str | None:
    """The first line the json module cannot parse, which pandas' own reader does not say, or the
    first record naming a key twice, whose last value pandas would keep without a word."""
    chunks = enumerate(text.split("\n"), start=1) if lines else [(1, text)]  # as pandas splits lines
    for first_line, chunk in chunks:
        if not chunk.strip():
            continue
        try:
            json.loads(chunk, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            line = first_line + exc.lineno - 1
            return f"{path}, line {line}: not valid JSON ({exc.msg} at column {exc.colno})"
        except _RepeatedKeys as exc:
            where = f"{path}, line {first_line}: the record" if lines else f"{path}: a record"
            return f"{where} names {exc} more than once; keep one"
    return None


class _RepeatedKeys(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise _RepeatedKeys(", ".join(map(repr, repeated)))
    return dict(pairs)


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
    """Refuse, before any work is done, a file that could not be written or whose format read_records
    could not read back, so a command writing two files writes neither when one would fail."""
    if path.suffix.lower() not in READERS:
        raise ValueError(f"cannot write {path}: supported formats are {', '.join(READERS)}")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; name a file in it")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {path}: the file is read-only to you")
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: folder {folder} is read-only to you")
    return path


def _nearest_existing(folder: Path) -> Path:
    """The folder itself or the closest of its parents that exists, where write_records' mkdir starts."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


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
