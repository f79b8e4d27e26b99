"""What the commands open: their settings and stores, each refusal said in one line with exit status 2."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import typer
from pydantic import ValidationError
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError

from models.redact import hide_passwords
from serving.audit import AuditStore, open_seal
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
from serving.keys import KeyStore
from serving.seal import AuditKeyError
from serving.settings import Settings, store_warnings, unknown_variables


def bind_audit_key(engine: Engine, path: Path) -> AuditStore:
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


def open_store(url: str) -> Engine:
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


def command_settings(options: dict[str, str] | None = None) -> Settings:
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


def key_store(settings: Settings | None = None) -> KeyStore:
    """The key store; settings already read are passed, so their warnings are not printed twice."""
    return KeyStore(open_store((settings or command_settings()).keys_url))


def audit_store(settings: Settings) -> AuditStore:
    """The audit store, signing, for a command whose action is an audit event: opened before the action,
    so a store that cannot take the event stops the command before it acts."""
    return bind_audit_key(open_store(settings.audit_url), settings.audit_key_file)


def read_store(url: str) -> Engine:
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
