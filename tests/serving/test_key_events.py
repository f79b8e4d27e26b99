"""A key is created or revoked together with its audit event, or not at all: `keys create`, `keys revoke`
and `dev-setup` against an audit store that refuses the event, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner, Result

from serving.cli import app
from serving.database import make_engine, migrate
from serving.keys import KeyStore
from tests.serving.servers import audit_events


def store_env(audit_url: str, keys_url: str, key_file: Path) -> dict:
    return {
        "REINTEGRA_AUDIT_URL": audit_url,
        "REINTEGRA_KEYS_URL": keys_url,
        "REINTEGRA_AUDIT_KEY_FILE": str(key_file),
    }


def serving(env: dict, *arguments: str) -> Result:
    return CliRunner().invoke(app, list(arguments), env=env)


def events_refused(url: str, refused: bool) -> None:
    """The audit store without its events table (as a failed write of the event sees it), or with it
    again: the key store is untouched."""
    engine = make_engine(url)
    names = ("audit_events", "audit_events_away") if refused else ("audit_events_away", "audit_events")
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {names[0]} RENAME TO {names[1]}"))
    engine.dispose()


def keys_in(url: str) -> list:
    engine = make_engine(url)
    migrate(engine)
    keys = KeyStore(engine).list()
    engine.dispose()
    return keys


def test_a_refused_event_creates_no_key_and_revokes_none(store_url, key_file):
    env = store_env(store_url, store_url, key_file)
    kept = serving(env, "keys", "create", "--role", "reviewer", "--name", "kept")
    assert kept.exit_code == 0, kept.output
    [kept_key] = keys_in(store_url)
    events_refused(store_url, True)
    created = serving(env, "keys", "create", "--role", "admin", "--name", "unrecorded")
    revoked = serving(env, "keys", "revoke", kept_key.id)
    assert [(k.name, k.revoked_at) for k in keys_in(store_url)] == [("kept", None)]
    assert created.exit_code == 2, created.output
    [line] = created.stderr.splitlines()
    assert line.startswith("cannot create the key with its audit event: ") and "audit_events" in line
    assert line.endswith("; no key was created")
    assert revoked.exit_code == 2, revoked.output
    [line] = revoked.stderr.splitlines()
    assert line.startswith(f"cannot revoke key {kept_key.id} with its audit event: ")
    assert line.endswith("; the key is still active")
    events_refused(store_url, False)
    assert serving(env, "keys", "revoke", kept_key.id).exit_code == 0
    assert [(e["kind"], e["subject"]) for e in audit_events(env)] == [
        ("key_created", kept_key.id),
        ("key_revoked", kept_key.id),
    ]
    verified = serving(env, "audit", "verify")
    assert verified.exit_code == 0, verified.output


def test_revoking_a_key_id_the_store_lacks_says_where_ids_are_and_records_nothing(tmp_path, key_file):
    url = f"sqlite:///{tmp_path}/audit.db"
    env = store_env(url, url, key_file)
    assert serving(env, "keys", "create", "--role", "scorer").exit_code == 0
    [key] = keys_in(url)
    result = serving(env, "keys", "revoke", "no-such-key")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "no key with id no-such-key; keys list shows each key's id, in its first column\n"
    assert [(k.id, k.revoked_at) for k in keys_in(url)] == [(key.id, None)]
    assert [e["kind"] for e in audit_events(env)] == ["key_created"]


def test_dev_setup_makes_no_key_when_the_event_is_refused(store_url, key_file, tmp_path):
    env = store_env(store_url, store_url, key_file)
    assert serving(env, "migrate").exit_code == 0
    events_refused(store_url, True)
    result = serving(env, "dev-setup", "--folder", str(tmp_path / "dev"))
    assert keys_in(store_url) == []
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].endswith("; no key was created")
    assert not (tmp_path / "dev" / "dev-keys.env").exists()


def test_keys_in_a_store_of_their_own_wait_for_the_audit_event(tmp_path, key_file):
    """Two stores cannot share a transaction: the event commits first, and the key only after it."""
    audit_url, keys_url = f"sqlite:///{tmp_path}/audit.db", f"sqlite:///{tmp_path}/keys.db"
    env = store_env(audit_url, keys_url, key_file)
    assert serving(env, "keys", "create", "--role", "scorer").exit_code == 0
    [key] = keys_in(keys_url)
    events_refused(audit_url, True)
    created = serving(env, "keys", "create", "--role", "admin")
    revoked = serving(env, "keys", "revoke", key.id)
    assert [(k.id, k.revoked_at) for k in keys_in(keys_url)] == [(key.id, None)]
    assert (created.exit_code, revoked.exit_code) == (2, 2), created.output + revoked.output


def test_a_chain_held_by_another_writer_past_the_wait_creates_no_key(fresh_database, key_file):
    """On PostgreSQL the key's row is written while another transaction holds the chain's row (a long
    write elsewhere): the event waits the store's lock timeout (10 s), then both are given up. A store
    not yet signing is refused the same way in one line, before any key is written."""
    env = store_env(fresh_database, fresh_database, key_file)
    assert serving(env, "migrate").exit_code == 0
    engine = make_engine(fresh_database)
    with engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT seq FROM audit_chain WHERE id = 1 FOR UPDATE"))
        unsigned = serving(env, "keys", "create", "--role", "admin")
    assert keys_in(fresh_database) == []
    assert unsigned.exit_code == 2, unsigned.output
    [line] = unsigned.stderr.splitlines()
    assert line.startswith("cannot sign with the audit store at postgresql") and "lock timeout" in line
    assert serving(env, "keys", "create", "--role", "scorer").exit_code == 0
    with engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT seq FROM audit_chain WHERE id = 1 FOR UPDATE"))
        created = serving(env, "keys", "create", "--role", "admin")
    engine.dispose()
    assert [k.role for k in keys_in(fresh_database)] == ["scorer"]
    assert created.exit_code == 2, created.output
    [line] = created.stderr.splitlines()
    assert line.startswith("cannot create the key with its audit event: ") and "lock timeout" in line
