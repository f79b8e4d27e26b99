"""Command line: validate a data file against a spec, generate the synthetic cohort."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from features.needs import need_labels
from features.records import check_writable, read_records, write_records
from features.spec import DatasetSpec, SpecError, load_spec
from features.synth import generate_georgia_cohort
from features.synth_generic import generate_cohort
from features.validation import ValidationReport, record_rows, validate_records

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False
)

SpecOption = Annotated[str, typer.Option(help="Built-in spec name or path to a spec YAML file.")]
INVALID_DATA = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(INVALID_DATA)


def _load(spec: str) -> DatasetSpec:
    try:
        return load_spec(spec)
    except SpecError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def validate(
    spec: SpecOption,
    data: Annotated[Path, typer.Option(help="Records file: CSV, Parquet, JSON or JSON Lines.")],
    drop_invalid: Annotated[
        bool, typer.Option(help="Keep the valid rows and write the rejected ones to a side file.")
    ] = False,
    rejected: Annotated[
        Path | None,
        typer.Option(help="Side file for rejected rows, as --valid-out (default: DATA.rejected.csv)."),
    ] = None,
    valid_out: Annotated[
        Path | None,
        typer.Option(help="Write the valid rows to this file (.csv, .parquet, .json or .jsonl) to train on."),
    ] = None,
    unlabelled: Annotated[
        bool, typer.Option(help="Records to score at release: no outcome, no supervision columns.")
    ] = False,
) -> None:
    """Check a records file against a spec; print a JSON summary, or the problems and exit 2."""
    if rejected is not None and not drop_invalid:  # the side file of a file refused whole was never written
        raise _fail(
            "--rejected names the side file of --drop-invalid: add --drop-invalid, or leave --rejected out"
        )
    dataset = _load(spec)
    side = (rejected or data.with_name(data.name + ".rejected.csv")) if drop_invalid else None
    _check_outputs_apart(data, valid_out, side, rejected)
    _check_writable("--valid-out", valid_out)
    _check_writable("--rejected" if rejected else "--rejected (default)", side)
    try:
        raw = read_records(data)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typed, report = validate_records(raw, dataset, labelled=not unlabelled)
    for line in report.lines():
        typer.echo(line, err=True)
    keep = _kept_rows(raw, report, data, side)
    if valid_out is not None:
        _write_valid(raw.iloc[keep], valid_out)
    summary = summarise(typed.iloc[keep], dataset, report, labelled=not unlabelled)
    json.dump(summary, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def _check_outputs_apart(
    data: Path, valid_out: Path | None, side: Path | None, rejected: Path | None
) -> None:
    """Refuse, before any work, an output that would overwrite the data file or the other output."""
    if valid_out is not None and valid_out.resolve() == data.resolve():
        raise _fail("--valid-out must name a new file, not the data file itself")
    if side is not None and side.resolve() == data.resolve():
        raise _fail("--rejected must name a new file, not the data file itself")
    if side is not None and valid_out is not None and valid_out.resolve() == side.resolve():
        default = "" if rejected else f" (--rejected defaults to {side})"
        raise _fail(f"--valid-out and --rejected must name different files{default}")


def _check_writable(option: str, out: Path | None) -> None:
    """Refuse an output that cannot be written before either is, so a failure leaves no half result."""
    if out is None:
        return
    try:
        check_writable(out)
    except (OSError, ValueError) as exc:
        raise _fail(f"{option}: {exc}") from exc


def _kept_rows(raw: pd.DataFrame, report: ValidationReport, data: Path, side: Path | None) -> list[int]:
    """Positions of the rows to keep; with --drop-invalid (a side file) the rejected ones go there."""
    if report.ok:
        return list(range(len(raw)))
    if side is None:
        raise _fail(f"{data}: {report.n_problems} problem(s); nothing was used")
    if not report.only_row_problems:  # a missing or misspelt column, no records: the file itself
        raise _fail(f"{data}: {report.n_problems} problem(s), not all in rows: dropping rows cannot fix them")
    _write_rejected(raw, report, side)
    typer.echo(f"rejected {len(report.invalid_rows)} row(s), written to {side}", err=True)
    keep = [i for i, row in enumerate(record_rows(raw)) if row not in report.invalid_rows]
    if not keep:
        raise _fail(f"{data}: no valid row left; nothing was kept")
    return keep


def _write_valid(valid: pd.DataFrame, out: Path) -> None:
    _write(valid, out)
    typer.echo(f"wrote {len(valid)} valid row(s) to {out}", err=True)


def _write(records: pd.DataFrame, out: Path) -> None:
    """Write records, or exit 2 with one line saying why not (a folder, no permission, a format)."""
    try:
        write_records(records, out)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc


def _write_rejected(raw: pd.DataFrame, report: ValidationReport, side: Path) -> None:
    rows = sorted(report.invalid_rows)
    out = raw.iloc[record_rows(raw).get_indexer(rows)].copy()
    out.insert(0, "_reasons", ["; ".join(report.invalid_rows[r]) for r in rows])
    out.insert(0, "_row", rows)
    _write(out, side)


def summarise(typed: pd.DataFrame, spec: DatasetSpec, report: ValidationReport, labelled: bool) -> dict:
    """What a data scientist checks first: size, gaps, base rate and need prevalences.

    A rate over no known value is None (JSON null), never NaN, which is not valid JSON.
    """
    summary: dict = {
        "spec": spec.name,
        "rows": len(typed),
        "columns": typed.shape[1],
        "rows_rejected": len(report.invalid_rows) if not report.ok else 0,
        "ignored_columns": report.unknown_columns,
        "missing_values": {c: int(n) for c, n in typed.isna().sum().items() if n},
    }
    if labelled:
        summary["outcome_base_rate"] = _rate(typed[spec.outcome.column].astype("float64"))
        labels = need_labels(typed, spec)
        summary["need_prevalence"] = {
            need: {"prevalence": _rate(labels[need]), "known": int(labels[need].notna().sum())}
            for need in labels
        }
    return summary


def _rate(values: pd.Series) -> float | None:
    mean = values.mean()
    return None if pd.isna(mean) else round(float(mean), 4)


@app.command()
def synth(
    spec: SpecOption,
    rows: Annotated[int, typer.Option(min=1, help="Number of people to generate.")],
    out: Annotated[Path, typer.Option(help="File to write: .csv, .parquet, .json or .jsonl.")],
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives the same file.")] = 0,
) -> None:
    """Write a synthetic cohort in the spec's layout.

    georgia_parole has a generator matched to the real cohort's statistics; any other spec gets
    records driven by one latent risk, enough to exercise training and serving end to end.
    """
    dataset = _load(spec)
    if dataset.name == "georgia_parole":
        cohort = generate_georgia_cohort(rows, seed)
    else:
        cohort = generate_cohort(dataset, rows, seed)
    _write(cohort, out)
    typer.echo(f"wrote {len(cohort)} rows to {out}", err=True)
