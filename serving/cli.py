"""Command line: run the server, manage API keys, check and replay the audit trail."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import secrets
import shlex
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, OperationalError

from serving.audit import AuditStore, open_seal, read_events
from serving.database import (
    SchemaMismatch,
    SchemaTooNew,
    driver_reason,
    make_engine,
    make_reader,
    migrate,
    require_current_schema,
    schema_change,
)
from serving.events import EVENT_KINDS, EventKind, key_event
from serving.keys import ROLES, ApiKey, KeyStore
from serving.redact import hide_passwords
from serving.seal import AuditKeyError, Seal, load_seal, write_new_seal
from serving.search import as_utc
from serving.settings import Settings, store_warnings, unknown_variables
from serving.verification import TamperEvidence, verify

if TYPE_CHECKING:
    from serving.model_store import ServingModel

app = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_show_locals=False)
# MLflow retries a tracking server 7 times, 120 s each: a page asking it while it is down would wait
# four minutes (holding a pool thread) for its 500; with these it says MLflow did not answer in seconds.
MLFLOW_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# How long uvicorn waits for a worker to answer: a new worker imports MLflow and loads the model (about
# 5 s, more on a busy host), and with uvicorn's 5 s every SIGHUP restart was abandoned.
WORKER_START_SECONDS = 60
# What `audit events` takes: a date, a time (UTC), or a time as it prints them (with its zone).
TIMES = [
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
]
keys_app = typer.Typer(help="Create, list and revoke API keys (stored as hashes).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(
    help="Check the audit trail's tamper evidence, list its administrative events and replay its scores "
    "(none writes), or rotate its key.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="uvicorn worker processes.")] = None,
    root_path: Annotated[
        str | None, typer.Option(help="Prefix a proxy serves the API under and strips, e.g. /reintegra.")
    ] = None,
) -> None:
    """Serve the API under uvicorn (the default command)."""
    if ctx.invoked_subcommand is not None:
        return
    options = {}  # checked with the settings, and named as given when refused
    if root_path is not None:
        os.environ["REINTEGRA_ROOT_PATH"], options["root_path"] = root_path, "--root-path"
    if workers is not None:
        os.environ["REINTEGRA_WORKERS"], options["workers"] = str(workers), "--workers"
    settings = _settings(options)
    host, port = host or settings.host, port or settings.port
    _check_address(host, port)
    # Here, not at the top nor before the checks above: MLflow and the model's libraries take 2-4 s to
    # import, which no other command needs and a refused setting need not wait for.
    from models.registry import configure_tracking
    from serving.model_store import ModelUnavailable, alias_version, load_version
    from serving.observability import MetricsFolderUnusable, shared_metrics_folder, uvicorn_log_config

    configure_tracking()
    for name, value in MLFLOW_HTTP_LIMITS.items():
        os.environ.setdefault(name, value)
    try:  # loaded once here: a worker that cannot load it fails, and uvicorn restarts it forever
        champion = load_version(settings.model_name, alias_version(settings.model_name, settings.model_alias))
    except ModelUnavailable as exc:  # say it once here, not in a traceback from every worker
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    seal = _migrate_stores(settings)
    workers = settings.workers
    if workers == 1:  # uvicorn replaces workers on SIGHUP only as their supervisor, which one worker has not
        signal.signal(signal.SIGHUP, _sighup_without_workers)
    if workers > 1 and not settings.session_secret:
        # One secret per server, so that a page session signed by one worker is read by the others.
        os.environ["REINTEGRA_SESSION_SECRET"] = secrets.token_urlsafe(32)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(shared_metrics_folder(workers))
        except MetricsFolderUnusable as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        uvicorn.run(
            _app_factory(workers, seal, champion),
            factory=True,
            host=host,
            port=port,
            workers=workers,
            root_path=settings.root_path,
            http="serving.draining:DrainingProtocol",
            log_config=uvicorn_log_config(),
            timeout_worker_healthcheck=WORKER_START_SECONDS,
            log_level="info",
            # uvicorn's access line names the path and query (a person's id) and neither the request
            # id nor the duration: RequestContextMiddleware writes one per request instead.
            access_log=False,
        )


def _app_factory(workers: int, seal: Seal, champion: ServingModel) -> str | Callable[[], FastAPI]:
    """One worker runs in this process, which has read the audit key and loaded the champion already: both
    are handed over, not read again. Workers are processes of their own, which uvicorn starts by import
    string."""
    if workers > 1:
        return "serving.app:create_app"
    from serving.app import create_app

    return functools.partial(create_app, seal=seal, champion=champion)


def _sighup_without_workers(signum: int, frame: object) -> None:
    """SIGHUP's default action ended a one-worker server at once, requests under way included; it is
    refused in the log instead, saying what does what the operator wanted."""
    logging.getLogger("reintegra.server").warning(
        "SIGHUP ignored: a one-worker server has no workers to replace; POST /v1/admin/reload loads the "
        "version the alias points at, and a new release or a version that accepts other records needs a "
        "restart (SIGTERM, then start it again), or serve with --workers 2 to restart by SIGHUP"
    )


def _check_address(host: str, port: int) -> None:
    """A host that names no address here stops the server in one line that says which setting, before the
    model loads; uvicorn said only '[Errno -2] Name or service not known'."""
    try:  # "" (None here) is every address, as uvicorn binds it
        family, kind, protocol, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        typer.echo(f"cannot listen on {host}:{port} (--host or REINTEGRA_HOST): {exc}", err=True)
        raise typer.Exit(2) from exc
    # A port another server holds was found only by uvicorn, after the model loaded: exit 3, no setting named.
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as uvicorn binds: TIME_WAIT is no holder
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # anything else is uvicorn's to say, as before
            typer.echo(
                f"cannot listen on {host}:{port} (--port or REINTEGRA_PORT): {exc}; another server holds it",
                err=True,
            )
            raise typer.Exit(2) from exc


def _migrate_stores(settings: Settings) -> Seal:
    """Once, before the workers start, so a store that cannot be opened stops the server in one line,
    not in a traceback from every worker that uvicorn restarts forever; returns the audit key."""
    engine = _open_store(settings.audit_url)
    seal = _bind_audit_key(engine, settings.audit_key_file).seal
    engine.dispose()
    if settings.keys_url != settings.audit_url:
        _open_store(settings.keys_url).dispose()
    return seal


def _bind_audit_key(engine: Engine, path: Path) -> AuditStore:
    """The audit store signing with its key, made here when the store has none yet (before the
    workers start, or before a command's first event)."""
    try:
        seal, created = open_seal(engine, path)
        audit = AuditStore(engine, seal)
        audit.bind_key()
    except AuditKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:  # a new key's file, where it cannot be written
        typer.echo(
            f"cannot make the audit key file {path} (REINTEGRA_AUDIT_KEY_FILE): {exc.strerror}", err=True
        )
        raise typer.Exit(2) from exc
    except DBAPIError as exc:  # the chain's row held by another writer past the store's wait, or refused
        shown = engine.url.render_as_string(hide_password=True)
        typer.echo(f"cannot sign with the audit store at {shown}: {driver_reason(exc)}", err=True)
        raise typer.Exit(2) from exc
    if created:
        typer.echo(
            f"created the audit key {path} (key {seal.fingerprint}), which signs every audit row: keep a "
            "copy away from the audit store, and give every server of this store the same file "
            "(REINTEGRA_AUDIT_KEY_FILE); README.md, 'Tamper evidence', says what it proves",
            err=True,
        )
    return audit


def _open_store(url: str) -> Engine:
    """The migrated store at `url`, or one line and exit 2 when it does not answer or its SQLite
    folder cannot be made."""
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        engine = make_engine(url)
        before, after = migrate(engine)
    except (DatabaseError, OSError, SchemaTooNew) as exc:  # DatabaseError: not a database, or not answering
        typer.echo(f"cannot open the store at {shown}: {driver_reason(exc)}", err=True)
        raise typer.Exit(2) from exc
    if said := schema_change(shown, before, after):
        typer.echo(said, err=True)
    return engine


def _settings(options: dict[str, str] | None = None) -> Settings:
    """The settings, or one line per bad environment variable and exit status 2; a variable that
    sets nothing is named as a warning. `options` maps a setting given on the command line to its
    option, so a refusal names what the user typed."""
    for line in unknown_variables(os.environ):
        typer.echo(f"warning: {line}", err=True)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = "_".join(str(p) for p in error["loc"])
            variable = f"REINTEGRA_{field.upper()}"
            value = error["input"]
            if variable.endswith("_URL"):
                value = hide_passwords(value)
            elif variable.endswith("_SECRET"):  # refused, yet perhaps the one really used elsewhere
                value = "***"
            message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
            given = (
                f"{options[field]} {shlex.quote(value)}"
                if field in (options or {})
                else f"{variable}={value!r}"
            )
            typer.echo(f"{given}: {message}", err=True)
        raise typer.Exit(2) from exc
    for line in store_warnings(settings):
        typer.echo(f"warning: {line}", err=True)
    return settings


def _store(settings: Settings | None = None) -> KeyStore:
    """The key store; settings already read are passed, so their warnings are not printed twice."""
    return KeyStore(_open_store((settings or _settings()).keys_url))


def _audit(settings: Settings) -> AuditStore:
    """The audit store, signing, for a command whose action is an audit event: opened before the action,
    so a store that cannot take the event stops the command before it acts."""
    return _bind_audit_key(_open_store(settings.audit_url), settings.audit_key_file)


def _read_store(url: str) -> Engine:
    """The store at `url` opened read-only at this release's schema, or one line and exit 2 saying why
    not and what to run: whoever checks a store must not change it, not even by migrating it."""
    shown = make_url(url).render_as_string(hide_password=True)
    engine = None
    try:
        engine = make_reader(url)
        require_current_schema(engine)
    except (DatabaseError, OSError, SchemaMismatch) as exc:
        if engine is not None:
            engine.dispose()
        typer.echo(f"cannot read the store at {shown}: {driver_reason(exc)}", err=True)
        raise typer.Exit(2) from exc
    return engine


@app.command("migrate")
def migrate_stores() -> None:
    """Bring the audit and key stores to this release's schema, as a server does at start-up."""
    settings = _settings()
    for url in dict.fromkeys((settings.audit_url, settings.keys_url)):
        _open_store(url).dispose()
        typer.echo(f"the store at {hide_passwords(url)} is at this release's schema")


@keys_app.command("create")
def create_key(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "",
) -> None:
    """Create a key and print it once; its last line is the key alone. The audit trail records who did."""
    settings = _settings()
    key, secret = _create_key(_store(settings), _audit(settings), role, name, "keys create")
    typer.echo(f"created {key.role} key {key.id} ({key.name}); it is shown only now:")
    typer.echo(secret)


@keys_app.command("list")
def list_keys() -> None:
    """Every key with its id, role, state, last use (to the minute) and name (never the key itself)."""
    settings = _settings()
    keys = _store(settings).list()
    if not keys:  # on stderr, as kubectl says "No resources found": the list on stdout stays empty
        shown = hide_passwords(settings.keys_url)
        typer.echo(f"no API keys in the store at {shown}; create one with keys create --role ROLE", err=True)
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        used = f"used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
        typer.echo(f"{key.id}  {key.role:<8}  {state:<24}  {used:<21}  {key.name}")


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="The key's id from 'keys list'.")]) -> None:
    """Revoke a key; the running server refuses it from the next request. The audit trail records who did."""
    settings = _settings()
    store, record = _store(settings), _recorder(_audit(settings), "key_revoked", "keys revoke")
    try:
        key, _ = store.revoke(key_id, record)
    except KeyError as exc:
        typer.echo(exc.args[0], err=True)
        raise typer.Exit(2) from exc
    except DBAPIError as exc:
        typer.echo(
            f"cannot revoke key {key_id} with its audit event: {driver_reason(exc)}; the key is still active",
            err=True,
        )
        raise typer.Exit(2) from exc
    since = f"{key.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
    typer.echo(f"{key.role} key {key.id} ({key.name}) is revoked since {since}")


def _recorder(audit: AuditStore, kind: EventKind, command: str) -> Callable[[Connection, ApiKey], None]:
    """Writes a key change's event on the connection making the change, so they commit together."""

    def record(connection: Connection, key: ApiKey) -> None:
        audit.record_event(key_event(kind, key, command), connection)

    return record


def _create_key(store: KeyStore, audit: AuditStore, role: str, name: str, command: str) -> tuple[ApiKey, str]:
    """A new key and its audit event, committed together; one line and exit 2 when either is refused."""
    try:
        return store.create(role, name, _recorder(audit, "key_created", command))  # type: ignore[arg-type]
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except DBAPIError as exc:
        typer.echo(
            f"cannot create the key with its audit event: {driver_reason(exc)}; no key was created", err=True
        )
        raise typer.Exit(2) from exc


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
    settings = _settings()
    place = _anchor(anchor) if anchor is not None else None
    engine = _read_store(settings.audit_url)
    try:
        previous = {path: load_seal(path) for path in previous_key_file or []}
        result = verify(engine, load_seal(settings.audit_key_file), place, previous)
    except AuditKeyError as exc:
        typer.echo(str(exc), err=True)
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
    settings = _settings()
    if kind is not None and kind not in EVENT_KINDS:
        typer.echo(f"--kind {kind!r}: give one of {', '.join(EVENT_KINDS)}", err=True)
        raise typer.Exit(2)
    engine = _read_store(settings.audit_url)
    try:
        events = read_events(engine, since and as_utc(since), until and as_utc(until), kind)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    for event in events:
        detail = json.dumps(event.detail, sort_keys=True)
        at = event.at.isoformat()
        typer.echo(f"{event.seq}  {at}  {event.kind:<12}  {event.actor}  {event.subject}  {detail}")


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
    from models.registry import configure_tracking
    from serving.model_store import ModelUnavailable, load_version
    from serving.replay import TOLERANCE, replay, stored_scores

    settings = _settings()
    engine = _read_store(settings.audit_url)
    try:
        rows = stored_scores(engine, score_ids)
    finally:
        engine.dispose()
    unknown = [score_id for score_id in score_ids if score_id not in rows]
    if unknown:
        typer.echo(f"no stored score with id {', '.join(unknown)}", err=True)
        raise typer.Exit(2)
    configure_tracking()
    try:
        replays = replay([rows[score_id] for score_id in dict.fromkeys(score_ids)], load_version)
    except ModelUnavailable as exc:
        typer.echo(str(exc), err=True)
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
    settings = _settings()
    old_path = settings.audit_key_file
    new_path = new_key_file or old_path.with_name(f"{old_path.stem}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.key")
    engine = _open_store(settings.audit_url)
    try:
        audit = AuditStore(engine, load_seal(old_path))
        audit.bind_key()
        new = write_new_seal(new_path)
    except AuditKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except FileExistsError as exc:
        typer.echo(
            f"the new key file {new_path} already exists: rotate-key makes the new key itself and never "
            "replaces a file; give a path that does not exist",
            err=True,
        )
        raise typer.Exit(2) from exc
    try:
        seq = audit.rotate_key(new, "audit rotate-key")
    except AuditKeyError as exc:  # refused before writing: the new key signed nothing
        new_path.unlink()
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except OperationalError as exc:  # the commit may have happened: the new key may sign the chain
        typer.echo(
            f"the audit store did not answer ({driver_reason(exc)}); {new_path} is kept: "
            "`audit events --kind key_rotated` says whether the rotation took effect",
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


def _anchor(text: str) -> tuple[int, str]:
    """An anchor as verify prints it, or exit 2 saying what one looks like."""
    seq, _, digest = text.partition(":")
    if not (seq.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        typer.echo(
            f"--anchor {text!r}: give SEQ:DIGEST as an earlier verify printed it ('anchor: ...')", err=True
        )
        raise typer.Exit(2)
    return int(seq), digest


@app.command("dev-setup")
def dev_setup(
    folder: Annotated[Path, typer.Option(help="Where to keep the development keys and example.")] = Path(
        "data"
    ),
) -> None:
    """First run on a developer's machine: one key per role and an example call to try."""
    from features.example import example_record
    from models.pyfunc import load_bundle
    from models.registry import configure_tracking

    settings = _settings()
    store = _store(settings)
    keys_file, example_file = folder / "dev-keys.env", folder / "example-request.json"
    folder.mkdir(parents=True, exist_ok=True)
    if not store.list() or not keys_file.exists():
        audit, lines = _audit(settings), []
        for role in ROLES:
            _, secret = _create_key(store, audit, role, f"development {role}", "dev-setup")
            lines.append(f"REINTEGRA_{role.upper()}_KEY={secret}")
        keys_file.unlink(missing_ok=True)
        with os.fdopen(os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write("\n".join(lines) + "\n")
        typer.echo(f"created development keys (also in {keys_file}, readable by you only):")
    else:
        typer.echo(f"development keys (created on the first run, kept in {keys_file}):")
    typer.echo(keys_file.read_text().strip())
    configure_tracking()
    spec = load_bundle(settings.model_uri).spec
    body = {"person_id": "P-example", "record": example_record(spec)}
    example_file.write_text(json.dumps(body, indent=2) + "\n")
    scorer = next(line.split("=", 1)[1] for line in keys_file.read_text().splitlines() if "SCORER" in line)
    typer.echo(
        "\nTry it once the server is up:\n"
        f"  curl -s -X POST http://{settings.host}:{settings.port}/v1/scores \\\n"
        f"    -H 'Authorization: Bearer {scorer}' -H 'Content-Type: application/json' \\\n"
        f"    -d @{example_file}\n"
        f"API docs: http://{settings.host}:{settings.port}/docs\n"
    )
