"""`python -m serving audit`: check the trail's tamper evidence, list its events, replay its scores,
rotate its key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from serving.audit import AuditStore, read_events
from serving.cli_stores import command_settings, open_store, read_store
from serving.database import driver_reason
from serving.events import EVENT_KINDS
from serving.seal import AuditKeyError, load_seal, write_new_seal
from serving.search import as_utc
from serving.verification import TamperEvidence, chain_end, verify

# What `audit events` takes: a date, a time (UTC) to the second or the microsecond, a time as it prints
# them (with its zone), or as the reviewer pages show it ("2026-11-25 09:16:09 UTC").
TIMES = [
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S UTC",
]
audit_app = typer.Typer(
    help="Check the audit trail's tamper evidence, list its administrative events and replay its scores "
    "(none writes), or rotate its key.",
    no_args_is_help=True,
)


@audit_app.command("verify")
def verify_audit(
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:DIGEST, the 'anchor' line of an earlier verify, kept outside the store."),
    ] = None,
    previous_key_file: Annotated[
        list[Path] | None,
        typer.Option(help="A key file that signed rows before a rotation (audit rotate-key); repeatable."),
    ] = None,
) -> None:
    """Recompute every audit row's digest along the chain; exit 1 naming the first row that fails."""
    settings = command_settings()
    place = _anchor(anchor) if anchor is not None else None
    engine = read_store(settings.audit_url)
    try:
        previous = {path: load_seal(path) for path in previous_key_file or []}
        result = verify(engine, load_seal(settings.audit_key_file), place, previous)
    except AuditKeyError as exc:
        unsigned = not settings.audit_key_file.exists() and chain_end(engine) == 0
        why = "; the store holds no signed row yet: a server's first start, or a keys command, makes the key"
        typer.echo(f"{exc}{why if unsigned else ''}", err=True)
        raise typer.Exit(2) from exc
    except TamperEvidence as exc:
        typer.echo(f"the audit trail fails verification: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(
        f"verified {result.rows} signed rows (scores, reads and events); {result.unsigned} rows from before "
        "migration 0008 carry no digest and are not covered"
    )
    if result.digest is not None:
        typer.echo(f"anchor: {result.seq}:{result.digest}")


@audit_app.command("events")
def list_events(
    since: Annotated[
        datetime | None, typer.Option(formats=TIMES, help="From this time (UTC unless it says), inclusive.")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(formats=TIMES, help="Up to this time (UTC unless it says), exclusive.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help=f"One of {', '.join(EVENT_KINDS)}.")] = None,
) -> None:
    """Administrative events in the order they happened, one a line: seq, time, kind, actor, subject, detail.

    Rows as the store holds them: `audit verify` says whether they are as they were signed."""
    settings = command_settings()
    if kind is not None and kind not in EVENT_KINDS:
        typer.echo(f"--kind {kind!r}: give one of {', '.join(EVENT_KINDS)}", err=True)
        raise typer.Exit(2)
    since, until = _event_window(since, until)
    engine = read_store(settings.audit_url)
    try:
        events = read_events(engine, since, until, kind)
    finally:
        engine.dispose()
    for event in events:
        detail = json.dumps(event.detail, sort_keys=True)
        at = event.at.isoformat()
        typer.echo(f"{event.seq}  {at}  {event.kind:<12}  {event.actor}  {event.subject}  {detail}")


def _event_window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Both times in UTC; a window no event can be in is a mistake in the command, not an empty list."""
    window = []
    for option, value in (("--since", since), ("--until", until)):
        try:
            window.append(value and as_utc(value))
        except ValueError as exc:
            typer.echo(f"{option} {value}: {exc}", err=True)
            raise typer.Exit(2) from exc
    start, end = window
    if start is not None and end is not None and end <= start:
        typer.echo(
            f"--until {end:%Y-%m-%d %H:%M:%S} UTC is not later than --since {start:%Y-%m-%d %H:%M:%S} UTC, "
            "so no event can be in the window (--since inclusive, --until exclusive): give the earlier "
            "time as --since",
            err=True,
        )
        raise typer.Exit(2)
    return start, end


@audit_app.command("replay")
def replay_scores(
    score_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="SCORE_ID", help="Ids of stored scores, as GET /v1/scores or the reviewer pages show."
        ),
    ],
) -> None:
    """Score stored scores' records again with the versions that made them; exit 1 when a number differs."""
    from models.registry import configure_tracking, sqlite_path, tracking_uri
    from serving.model_store import ModelUnavailable, load_version, tracking_store
    from serving.replay import TOLERANCE, replay, stored_scores

    settings = command_settings()
    engine = read_store(settings.audit_url)
    try:
        rows = stored_scores(engine, score_ids)
    finally:
        engine.dispose()
    unknown = [score_id for score_id in score_ids if score_id not in rows]
    if unknown:
        typer.echo(f"no stored score with id {', '.join(unknown)}", err=True)
        raise typer.Exit(2)
    # Run from another folder, MLflow made an empty store there and said the version was not found.
    database = sqlite_path(tracking_uri())
    if database is not None and not database.is_file():
        typer.echo(
            f"no MLflow store at {tracking_uri()} ({database.resolve()}): run this command in the folder the "
            "server runs in, or set MLFLOW_TRACKING_URI to the server's",
            err=True,
        )
        raise typer.Exit(2)
    configure_tracking()
    try:
        replays = replay([rows[score_id] for score_id in dict.fromkeys(score_ids)], load_version)
    except ModelUnavailable as exc:
        typer.echo(f"{exc}; looked in MLflow at {tracking_store()}", err=True)
        raise typer.Exit(2) from exc
    report = {
        "tolerance": TOLERANCE,
        "replayed": len(replays),
        "matching": sum(r.matches for r in replays),
        "scores": [
            {
                "id": r.score_id,
                "model": {"name": r.model_name, "version": r.model_version},
                "matches": r.matches,
                "largest_difference": r.largest_difference,
                "differences": [vars(d) for d in r.differences],
            }
            for r in replays
        ],
    }
    typer.echo(json.dumps(report, indent=2))
    if report["matching"] < len(replays):
        raise typer.Exit(1)


@audit_app.command("rotate-key")
def rotate_audit_key(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            help="Where to make the new key; must not exist (default: beside the current key file, named "
            "by the time, e.g. data/audit-20261124T150000Z.key)."
        ),
    ] = None,
) -> None:
    """Make a new audit key and hand the chain to it: a key_rotated event signed by the current key
    (REINTEGRA_AUDIT_KEY_FILE), after which rows are signed by the new one. The old file is kept."""
    settings = command_settings()
    old_path = settings.audit_key_file
    new_path = new_key_file or old_path.with_name(f"{old_path.stem}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.key")
    engine = open_store(settings.audit_url)
    try:
        audit = AuditStore(engine, load_seal(old_path))
        audit.bind_key()
        new = write_new_seal(new_path)
    except AuditKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(_unmade(new_path, exc), err=True)
        raise typer.Exit(2) from exc
    try:
        seq = audit.rotate_key(new, "audit rotate-key")
    except AuditKeyError as exc:  # refused before writing (rotated meanwhile): the new key signed nothing
        new_path.unlink()
        typer.echo(f"{exc} while this one ran: {new_path} was removed, as it signs nothing", err=True)
        raise typer.Exit(2) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:  # the commit may have happened: the new key may sign the chain
            typer.echo(
                f"the audit store did not answer ({driver_reason(exc)}); {new_path} is kept: "
                "`audit events --kind key_rotated` says whether the rotation took effect",
                err=True,
            )
        else:  # refused and rolled back (a lock timeout, say): the new key signed nothing
            new_path.unlink()
            typer.echo(
                f"the audit store refused the rotation ({driver_reason(exc)}); nothing changed: key "
                f"{audit.seal.fingerprint} still signs the trail, and {new_path} was removed",
                err=True,
            )
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    old = audit.seal.fingerprint
    typer.echo(
        f"the audit key is now {new.fingerprint} ({new_path}); the old key {old} ({old_path}) signed the "
        f"rows up to seq {seq}, its key_rotated event included. Next:\n"
        f"  1. set REINTEGRA_AUDIT_KEY_FILE={new_path} for every server of this store and for these "
        "commands, and restart the servers: until then they refuse to write (503) and report not ready;\n"
        f"  2. keep {old_path}, and a copy of both files away from the store: `audit verify "
        f"--previous-key-file {old_path}` needs it for the rows it signed."
    )


def _unmade(path: Path, exc: OSError) -> str:
    """Why the new key file could not be made: only the file itself existing means it is there already."""
    if isinstance(exc, FileExistsError) and str(exc.filename) == str(path):
        return (
            f"the new key file {path} already exists: rotate-key makes the new key itself and never "
            "replaces a file; give a path that does not exist"
        )
    return (
        f"cannot make the new key file {path}: {exc.strerror} ({exc.filename}); give a path in a folder "
        "you can write"
    )


def _anchor(text: str) -> tuple[int, str]:
    """An anchor as verify prints it, or exit 2 saying what one looks like."""
    seq, _, digest = text.partition(":")
    if not (seq.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        typer.echo(
            f"--anchor {text!r}: give SEQ:DIGEST as an earlier verify printed it ('anchor: ...')", err=True
        )
        raise typer.Exit(2)
    return int(seq), digest
