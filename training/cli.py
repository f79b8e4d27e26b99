"""Command line for data scientists: train, evaluate and promote models."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from features.spec import SpecError, load_spec
from features.validation import RecordsInvalid
from models import DEFAULT_MODEL_NAME
from models.redact import hide_passwords
from training.model_names import check_model_name

# Each command imports what it runs inside it: MLflow and the models take 2.5 s to import, which --help
# and a refused option need not wait for.
app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False
)
FAILED = 2
NOT_REPRODUCED = 1
MAX_SEED = 2**32 - 1  # numpy's seeds, which the split takes


def _print_json(payload: dict, warnings: Sequence[str] = ()) -> None:
    """The payload on stdout, for a program to read; its warnings first, on stderr, for a person."""
    for warning in warnings:
        typer.echo(warning, err=True)
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _fail(message: str) -> typer.Exit:
    """Prints why a command stopped; messages quote MLFLOW_TRACKING_URI, which may hold a password."""
    typer.echo(hide_passwords(message), err=True)
    return typer.Exit(FAILED)


@contextmanager
def _terminal_step(console: Console, text: str):
    """A spinner with the step's name on a terminal; nothing when output is redirected."""
    if console.is_terminal:
        with console.status(text):
            yield
        console.log(f"done: {text}")
    else:
        yield


@app.command()
def train(
    spec: Annotated[str, typer.Option(help="Built-in spec name or path to a spec YAML file.")],
    data: Annotated[Path, typer.Option(help="Labelled records: CSV, Parquet, JSON or JSON Lines.")],
    name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL_NAME,
    seed: Annotated[
        int, typer.Option(help="Seed for the split, the folds and the trees.", min=0, max=MAX_SEED)
    ] = 0,
) -> None:
    """Validate, fit risk and needs models, evaluate on a held-out part, log and register."""
    console = Console(stderr=True)
    try:
        check_model_name(name)  # the name and the spec before MLflow and the models, which take seconds
        dataset = load_spec(spec)
        from training.train import train as run_training

        result = run_training(dataset, data, name, seed, step=lambda text: _terminal_step(console, text))
    except (SpecError, RecordsInvalid, OSError, ValueError) as exc:
        raise _fail(f"training stopped, nothing was registered:\n{exc}") from exc
    _print_json(result.summary(), result.warnings)


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="Model URI, e.g. models:/reintegra@champion.")],
    data: Annotated[Path, typer.Option(help="Labelled records in the model's layout.")],
) -> None:
    """Score a labelled file with a registered model and print its evaluation as JSON."""
    from training.evaluate_file import evaluate_file

    try:
        result = evaluate_file(model, data)
    except (RecordsInvalid, OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _print_json(result.report, result.warnings)


@app.command()
def score(
    model: Annotated[str, typer.Option(help="Registered model: models:/NAME/VERSION or models:/NAME@ALIAS.")],
    data: Annotated[Path, typer.Option(help="Records at release: CSV, Parquet, JSON or JSON Lines.")],
    out: Annotated[Path, typer.Option(help="Where the scores go: JSON Lines, one per record (.jsonl).")],
) -> None:
    """Score a file of records offline as the API would, one JSON line per record, and print a summary."""
    from training.score_file import score_file

    try:
        summary, warnings = score_file(model, data, out)
    except (RecordsInvalid, OSError, ValueError) as exc:
        raise _fail(f"nothing was scored:\n{exc}") from exc
    _print_json(summary, warnings)


@app.command(name="check-data")
def check_data_file(
    run: Annotated[str, typer.Option(help="MLflow run id of a training run.")],
    data: Annotated[Path, typer.Option(help="The file to check.")],
) -> None:
    """Say whether DATA is, byte for byte, the file RUN was trained on (by SHA-256)."""
    from training.reproduce import check_data, logged_run

    try:
        logged = logged_run(run)
        digest = check_data(logged, data)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"{data} is the file run {run} was trained on (SHA-256 {digest})")


@app.command(name="reproduce")
def reproduce_run(
    run: Annotated[str, typer.Option(help="MLflow run id of the training run to reproduce.")],
    data: Annotated[Path, typer.Option(help="The file that run was trained on (checked by SHA-256).")],
) -> None:
    """Retrain RUN's model from its logged spec, seed and file, register the result as a new version
    tagged `reproduces`, and compare probabilities and metrics; exit 1 when they differ."""
    from training.reproduce import reproduce

    console = Console(stderr=True)
    try:
        report = reproduce(run, data, step=lambda text: _terminal_step(console, text))
    except (SpecError, RecordsInvalid, OSError, ValueError) as exc:
        raise _fail(f"reproduction stopped:\n{exc}") from exc
    _print_json(report, [f"warning: {difference}" for difference in report["environment_differences"]])
    if not report["identical"]:
        typer.echo(f"not reproduced: {_what_differs(report)}; see the JSON", err=True)
        raise typer.Exit(NOT_REPRODUCED)


def _what_differs(report: dict) -> str:
    column, largest = max(report["max_abs_difference"].items(), key=lambda item: item[1])
    parts = [f"probabilities differ by up to {largest:.3g} ({column})"] if largest else []
    if report["metrics_differing"]:
        parts.append(f"{len(report['metrics_differing'])} metric(s) differ")
    return " and ".join(parts)


@app.command(name="promote")
def promote_version(
    name: Annotated[str, typer.Option(help="Registered model name.")],
    version: Annotated[str, typer.Option(help="Version to make champion.")],
    force: Annotated[bool, typer.Option(help="Promote even if gates fail (needs --reason).")] = False,
    reason: Annotated[
        str, typer.Option(help="Why the version is promoted (needed to force a failing one); recorded.")
    ] = "",
) -> None:
    """Move the champion alias to VERSION if it passes its spec's gates."""
    from training.promote import PromotionRefused, promote

    try:
        result = promote(name, version, force=force, reason=reason)
    except (PromotionRefused, ValueError) as exc:
        raise _fail(str(exc)) from exc
    except Exception as exc:  # unknown name or version: MLflow's own exception
        raise _fail(f"cannot promote {name} version {version}: {exc}") from exc
    if not result["moved"]:
        typer.echo(
            f"{name} version {result['model_version']} is already champion (since {result['moved_at']}); "
            "nothing moved",
            err=True,
        )
    _print_json(result)


@app.command()
def bootstrap(
    spec: Annotated[str, typer.Option(help="Built-in spec name or path to a spec YAML file.")],
    data: Annotated[Path, typer.Option(help="Labelled records to train on.")],
    name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL_NAME,
) -> None:
    """Development set-up: train and promote a first champion, only when there is none yet.

    A first model that fails a gate is still promoted, with the failed gates recorded as the
    reason, so a development server can start; real deployments use train and promote.
    """
    from models.registry import configure_tracking
    from training.promote import PromotionRefused, promote
    from training.tracking import CHAMPION, champion_version
    from training.train import train as run_training

    configure_tracking()
    try:
        loaded = load_spec(spec)  # first, so a bad spec is said even when there is nothing to do
    except SpecError as exc:
        raise _fail(f"bootstrap stopped:\n{exc}") from exc
    try:
        existing = champion_version(name)
    except ValueError as exc:
        raise _fail(f"bootstrap stopped:\n{exc}") from exc
    if existing is not None:
        typer.echo(f"{name}@{CHAMPION} is version {existing}; nothing to do", err=True)
        return
    try:
        result = run_training(loaded, data, name)
        try:
            outcome = promote(name, result.model_version)
        except PromotionRefused as refused:
            failed = "\n".join(f"  {g.name}: {g.detail}" for g in refused.failed)
            typer.echo(
                f"{name} version {result.model_version} fails {len(refused.failed)} gate(s); as a "
                f"development bootstrap it is promoted anyway, with the failed gates recorded as the "
                f"reason:\n{failed}",
                err=True,
            )
            reason = "development bootstrap; failed gates: " + ", ".join(g.name for g in refused.failed)
            outcome = promote(name, result.model_version, force=True, reason=reason)
    except (SpecError, RecordsInvalid, OSError, ValueError) as exc:
        raise _fail(f"bootstrap stopped:\n{exc}") from exc
    _print_json(outcome)
