"""Validation: parse text cells into typed columns, collecting every problem a person can fix."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.records import FILE_ROW
from features.spec import FALSE_WORDS, TRUE_WORDS, WHOLE_NUMBER, ColumnSpec, DatasetSpec, is_whole_number

MAX_PROBLEMS = 100
SHOWN_CHARACTERS = 60
SHOWN_ROWS = 10  # rows a line names for one problem repeated down a column (the count covers them all)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data; `row` is where the record is, as `record_rows` numbers it."""

    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        return _line(self.message, [] if self.row is None else [self.row], self.column)


def _line(message: str, rows: list[int], column: str | None) -> str:
    """One problem as a person reads it, with the rows it is in: "rows 3, 7 and 9, column X: ..."."""
    where = ", ".join(part for part in (_rows_text(rows), f"column {column}" if column else "") if part)
    return f"{where}: {message}" if where else message


def _rows_text(rows: list[int]) -> str:
    if len(rows) <= 1:
        return f"row {rows[0]}" if rows else ""
    shown = [str(row) for row in rows[:SHOWN_ROWS]]
    if len(rows) > SHOWN_ROWS:
        shown.append(f"{len(rows) - SHOWN_ROWS:,} more")
    return f"rows {', '.join(shown[:-1])} and {shown[-1]}"


@dataclass
class ValidationReport:
    """Every problem found (up to a cap, with a count of the rest) and what was ignored."""

    n_rows: int
    problems: list[Problem] = field(default_factory=list)
    n_problems: int = 0
    missing_columns: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    invalid_rows: dict[int, list[str]] = field(default_factory=dict)
    max_problems: int = MAX_PROBLEMS
    # Every problem's rows by column and message, in the order found: one line each for a person.
    by_cause: dict[tuple[str | None, str], list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.n_problems == 0

    @property
    def only_row_problems(self) -> bool:
        """Whether every problem belongs to a row, so that dropping the invalid rows leaves valid data."""
        return self.n_problems == sum(map(len, self.invalid_rows.values()))

    def add(self, problem: Problem) -> None:
        self.n_problems += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)
        rows = self.by_cause.setdefault((problem.column, problem.message), [])
        if problem.row is not None:
            rows.append(problem.row)
            self.invalid_rows.setdefault(problem.row, []).append(str(problem))

    def lines(self) -> list[str]:
        """The report as lines for a person: one per problem, naming every row it is in, so a value
        wrong down a whole column is one line and the next column's problems still show; then the
        ignored columns."""
        causes = list(self.by_cause.items())[: self.max_problems]
        lines = [_line(message, rows, column) for (column, message), rows in causes]
        hidden = self.n_problems - sum(max(len(rows), 1) for _, rows in causes)
        if hidden:
            lines.append(f"... and {hidden} more problems")
        if self.unknown_columns:
            lines.append("ignored unknown columns: " + ", ".join(self.unknown_columns))
        return lines

    def ignored_columns_warnings(self, source: object) -> list[str]:
        """The columns the spec does not declare, as a warning naming `source`: a column added to a file
        for the models to read does nothing until the spec declares it."""
        if not self.unknown_columns:
            return []
        return [
            f"warning: {source} has columns the spec does not declare, ignored: "
            f"{', '.join(self.unknown_columns)}; declare a column in the spec for the models to read it"
        ]


class RecordsInvalid(ValueError):
    """Raised when a file has problems and the caller asked for strict validation."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(f"{report.n_problems} problem(s) in the data:\n" + "\n".join(report.lines()))


def validate_records(
    raw: pd.DataFrame,
    spec: DatasetSpec,
    *,
    labelled: bool = True,
    supervision: bool = True,
    max_problems: int = MAX_PROBLEMS,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Parse text cells into typed columns and report every problem.

    Labelled data (for training and evaluation) needs the id, the outcome and every required
    column, the supervision-time ones too unless `supervision` is False (evaluating the risk model on a
    file without them: they are then missing in every row, as an optional column left out is);
    unlabelled data (scoring at release) needs only the required release-time columns.
    Returns the typed frame (all rows, invalid cells as missing) and the report.
    """
    report = ValidationReport(n_rows=len(raw), max_problems=max_problems)
    if len(raw) == 0:
        report.add(Problem("the file has no records: it needs at least one row after the header"))
    expected = _expected_columns(spec, labelled, supervision)
    report.missing_columns = [c for c in expected if c not in raw.columns]
    for name in report.missing_columns:
        report.add(Problem(f"missing required column {name}"))
    known = {spec.id, spec.outcome.column, *(c.name for c in spec.columns)}
    report.unknown_columns = [str(c) for c in raw.columns if c not in known]
    _check_near_headers([str(c) for c in raw.columns], known, report)

    rows = record_rows(raw)
    typed = pd.DataFrame(index=raw.index)
    if spec.id in raw.columns:
        typed[spec.id] = raw[spec.id]
        _check_ids(raw[spec.id], rows, report)
    for column in spec.columns:
        if column.name in raw.columns:
            typed[column.name] = _parse_checked(raw[column.name], column, rows, report)
        elif not column.required or (labelled and column.name not in expected):
            # an optional column left out (or a supervision-time one not asked for) is missing in every row
            typed[column.name] = parse_column(pd.Series(np.nan, index=raw.index, dtype=object), column)
    if labelled and spec.outcome.column in raw.columns:
        outcome = ColumnSpec(name=spec.outcome.column, kind="boolean", domain="outcome")
        parsed = _parse_checked(raw[spec.outcome.column], outcome, rows, report)
        for row in rows[np.asarray(parsed.isna()) & np.asarray(raw[spec.outcome.column].isna())]:
            report.add(Problem("outcome is missing; it must be Yes or No", row, outcome.name))
        typed[spec.outcome.column] = parsed
    return typed, report


def record_rows(raw: pd.DataFrame) -> pd.Index:
    """Each record's row as the user sees the file read_records read (its index), else its position
    from 1: what problems name, so a row number can be found in an editor or a spreadsheet."""
    return raw.index if raw.index.name == FILE_ROW else pd.RangeIndex(1, len(raw) + 1)


def _expected_columns(spec: DatasetSpec, labelled: bool, supervision: bool) -> list[str]:
    if not labelled:  # scoring: protected attributes are welcome for audits, never needed
        scored = [c for c in spec.columns if c.known == "release" and c.name not in spec.protected]
        return [c.name for c in scored if c.required]
    required = [c.name for c in spec.columns if c.required and (supervision or c.known == "release")]
    return [spec.id, *required, spec.outcome.column]


def _check_ids(ids: pd.Series, rows: pd.RangeIndex, report: ValidationReport) -> None:
    for row in rows[np.asarray(ids.isna())]:
        report.add(Problem("id is missing", row, str(ids.name)))
    duplicated = np.asarray(ids.duplicated(keep="first") & ids.notna())
    first = dict(zip(ids[::-1], rows[::-1], strict=True))  # each id's first row, as keep="first" keeps it
    for row, value in zip(rows[duplicated], ids[duplicated], strict=True):
        message = f"id {_shown(value)} appears more than once (first in row {first[value]})"
        report.add(Problem(message, row, str(ids.name), value))


def _parse_checked(
    raw: pd.Series, column: ColumnSpec, rows: pd.RangeIndex, report: ValidationReport
) -> pd.Series:
    parsed = parse_column(raw, column)
    bad = np.asarray(raw.notna() & parsed.isna())
    for row, value in zip(rows[bad], raw[bad], strict=True):
        report.add(
            Problem(f"{_shown(value)} is not allowed; allowed: {column.allowed()}", row, column.name, value)
        )
    return parsed


def _shown(value: str) -> str:
    """A value as a message quotes it, cut short so one long cell cannot flood the report."""
    if len(value) <= SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:SHOWN_CHARACTERS] + '...'!r} ({len(value)} characters)"


def parse_column(raw: pd.Series, column: ColumnSpec) -> pd.Series:
    """Typed values of one column; a value that is not allowed becomes missing (caller reports)."""
    text = raw.astype("str").str.strip()
    if column.kind == "boolean":
        lowered = as_level(text.str.lower(), TRUE_WORDS + FALSE_WORDS)
        values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        values[lowered.isin(TRUE_WORDS)] = True
        values[lowered.isin(FALSE_WORDS)] = False
        return values
    if column.kind == "ordinal":
        return pd.Series(
            pd.Categorical(_canonical(text, column.order or []), categories=column.order, ordered=True),
            index=raw.index,
        )
    if column.kind == "numeric":
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        if column.min is not None:
            numbers[numbers < column.min] = np.nan
        if column.max is not None:
            numbers[numbers > column.max] = np.nan
        return numbers.where(np.isfinite(numbers))
    if column.values:
        return _canonical(text, column.values).astype("str")
    return text


def _canonical(text: pd.Series, levels: list[str]) -> pd.Series:
    """Map values to their declared spelling, ignoring case; anything else becomes missing."""
    by_lower = {level.lower(): level for level in levels}
    return as_level(text.str.lower(), list(by_lower)).map(by_lower)


def as_level(text: pd.Series, levels: Collection[str]) -> pd.Series:
    """A whole-number float ("3.0") reads as its integer ("3") unless it is itself a level."""
    return text.where(text.isin(levels), text.str.replace(WHOLE_NUMBER, r"\1", regex=True))


def level_key(value: object, keys: Collection[str]) -> str:
    """One value as `as_level` reads a file's cell, for lower-case `keys`: the fast path for one record."""
    if is_whole_number(value):
        value = int(value)
    key = str(value).strip().lower()
    return key if key in keys else re.sub(WHOLE_NUMBER, r"\1", key)


def _check_near_headers(headers: list[str], known: set[str], report: ValidationReport) -> None:
    """A header that differs from a spec column only in case or spaces is a misspelling, not an
    extra column: ignoring it would leave that column missing in every row."""
    by_key = {name.strip().lower(): name for name in known}
    for header in headers:
        meant = by_key.get(header.strip().lower())
        if meant is not None and meant != header and meant not in headers:
            report.add(
                Problem(f"column header {header!r} should be {meant!r}: headers must match the spec exactly")
            )
