"""`python -m serving keys`: create, list and revoke API keys, each change an audit event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from models.redact import hide_passwords
from serving.audit import AuditStore
from serving.cli_stores import audit_store, command_settings, key_store
from serving.database import driver_reason
from serving.events import EventKind, key_event
from serving.keys import ROLES, ApiKey, KeyStore

keys_app = typer.Typer(help="Create, list and revoke API keys (stored as hashes).", no_args_is_help=True)


@keys_app.command("create")
def create_key(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "",
) -> None:
    """Create a key and print it once; its last line is the key alone. The audit trail records who did."""
    settings = command_settings()
    key, secret = create_key_with_event(key_store(settings), audit_store(settings), role, name, "keys create")
    typer.echo(f"created {key.role} key {key.id} ({key.name}); it is shown only now:")
    typer.echo(secret)


@keys_app.command("list")
def list_keys() -> None:
    """Every key with its id, role, state, last use (to the minute) and name (never the key itself)."""
    settings = command_settings()
    keys = key_store(settings).list()
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
    settings = command_settings()
    store, record = key_store(settings), _recorder(audit_store(settings), "key_revoked", "keys revoke")
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


def create_key_with_event(
    store: KeyStore, audit: AuditStore, role: str, name: str, command: str
) -> tuple[ApiKey, str]:
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
