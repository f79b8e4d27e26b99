"""Command line: run the server, migrate its stores, set up a developer's machine; the keys and audit
commands are in cli_keys and cli_audit."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn
from fastapi import FastAPI

from models.redact import hide_passwords
from serving.cli_audit import audit_app
from serving.cli_keys import create_key_with_event, keys_app
from serving.cli_stores import audit_store, bind_audit_key, command_settings, key_store, open_store
from serving.keys import ROLES, KeyStore
from serving.seal import Seal
from serving.settings import Settings

if TYPE_CHECKING:
    from serving.model_store import ServingModel

app = typer.Typer(
    add_completion=False,
    help="Command line: run the server, migrate its stores, set up a developer's machine, manage API keys "
    "and the audit trail.",
    pretty_exceptions_show_locals=False,
)
# How long uvicorn waits for a worker to answer: a new worker imports MLflow and loads the model (about
# 5 s, more on a busy host), and with uvicorn's 5 s every SIGHUP restart was abandoned.
WORKER_START_SECONDS = 60
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    # Ranges checked with the settings, not by Typer, whose usage box took five lines for --port 0.
    port: Annotated[int | None, typer.Option(help="Port, 1-65535 (default 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="uvicorn worker processes, 1 to 4 per CPU (default 1).")
    ] = None,
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
    if port is not None:
        os.environ["REINTEGRA_PORT"], options["port"] = str(port), "--port"
    settings = command_settings(options)
    host, port = host or settings.host, settings.port
    _check_address(host, port)
    # Here, not at the top nor before the checks above: MLflow and the model's libraries take 2-4 s to
    # import, which no other command needs and a refused setting need not wait for.
    from models.registry import configure_tracking
    from serving.model_store import ModelUnavailable, alias_version, load_version
    from serving.observability import MetricsFolderUnusable, shared_metrics_folder, uvicorn_log_config

    configure_tracking()  # also bounds MLflow's retries, which the workers inherit
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
    # A port another server holds, or an address no interface here has, was found only by uvicorn, after the
    # model loaded, naming no setting.
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as uvicorn binds: TIME_WAIT is no holder
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                said = f"(--port or REINTEGRA_PORT): {exc}; another server holds it"
            elif exc.errno == errno.EADDRNOTAVAIL:
                said = (
                    f"(--host or REINTEGRA_HOST): {exc}; no network interface of this host has that address"
                )
            else:
                return  # anything else is uvicorn's to say, as before
            typer.echo(f"cannot listen on {host}:{port} {said}", err=True)
            raise typer.Exit(2) from exc


def _migrate_stores(settings: Settings) -> Seal:
    """Once, before the workers start, so a store that cannot be opened stops the server in one line,
    not in a traceback from every worker that uvicorn restarts forever; returns the audit key."""
    engine = open_store(settings.audit_url)
    seal = bind_audit_key(engine, settings.audit_key_file).seal
    engine.dispose()
    if settings.keys_url != settings.audit_url:
        open_store(settings.keys_url).dispose()
    return seal


@app.command("migrate")
def migrate_stores() -> None:
    """Bring the audit and key stores to this release's schema, as a server does at start-up."""
    settings = command_settings()
    for url in dict.fromkeys((settings.audit_url, settings.keys_url)):
        open_store(url).dispose()
        typer.echo(f"the store at {hide_passwords(url)} is at this release's schema")


def _kept_keys(keys_file: Path) -> dict[str, str]:
    """The development file's keys by variable (`REINTEGRA_SCORER_KEY=...` lines)."""
    pairs = (line.split("=", 1) for line in keys_file.read_text().splitlines() if "=" in line)
    return dict(pairs)


def _all_active(store: KeyStore, keys_file: Path) -> bool:
    """Whether every key the development file holds still opens this store; printing keys that do not
    would give the example call a 401."""
    kept = _kept_keys(keys_file).values()
    return bool(kept) and all(store.verify(key) is not None for key in kept)


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

    settings = command_settings()
    store = key_store(settings)
    keys_file, example_file = folder / "dev-keys.env", folder / "example-request.json"
    folder.mkdir(parents=True, exist_ok=True)
    if not keys_file.exists() or not _all_active(store, keys_file):
        if keys_file.exists():  # made for another key store, or revoked: printed, they would get a 401
            where = hide_passwords(settings.keys_url)
            typer.echo(f"the keys in {keys_file} do not open the key store at {where}: making new ones")
        audit, lines = audit_store(settings), []
        for role in ROLES:
            _, secret = create_key_with_event(store, audit, role, f"development {role}", "dev-setup")
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
    scorer = _kept_keys(keys_file)["REINTEGRA_SCORER_KEY"]
    typer.echo(
        "\nTry it once the server is up:\n"
        f"  curl -s -X POST http://{settings.host}:{settings.port}/v1/scores \\\n"
        f"    -H 'Authorization: Bearer {scorer}' -H 'Content-Type: application/json' \\\n"
        f"    -d @{example_file}\n"
        f"API docs: http://{settings.host}:{settings.port}/docs\n"
    )
