"""Connection pools sized from the settings, so an operator can budget PostgreSQL's connections;
migrations that servers starting at once on a new SQLite store run together; readiness's short lock wait."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from serving.app import create_app
from serving.database import make_engine, migrate
from serving.settings import Settings
from tests.serving.scenarios import readiness_gives_up_on_a_locked_store

pytestmark = pytest.mark.slow


def test_pool_settings_bound_the_connections_a_worker_opens(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("REINTEGRA_DB_POOL_SIZE", "1")
    monkeypatch.setenv("REINTEGRA_DB_MAX_OVERFLOW", "0")
    database = f"sqlite:///{tmp_path}/audit.db"
    settings = Settings(
        audit_url=database, keys_url=database, audit_key_file=tmp_path / "audit.key", poll_seconds=0
    )
    app = create_app(settings)
    audit = app.state.audit.engine
    assert audit.pool.size() == 1
    with audit.connect(), pytest.raises(PoolTimeout):
        audit.connect()


def test_servers_starting_at_once_migrate_a_new_sqlite_store_once(tmp_path):
    """Four migrations released together on each of twenty new files: none fails, one schema results."""
    for attempt in range(20):
        engines = [make_engine(f"sqlite:///{tmp_path}/audit-{attempt}.db") for _ in range(4)]
        migrate_at_once(engines)  # raises if any migration collided with another
        with engines[0].connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        for engine in engines:
            engine.dispose()


def migrate_at_once(engines: list[Engine]) -> None:
    """Migrate every engine from its own thread, all released by one barrier."""
    start = threading.Barrier(len(engines))

    def migrate_when_released(engine: Engine) -> None:
        start.wait()
        migrate(engine)

    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(migrate_when_released, engines))


def test_the_migrations_build_the_schema_the_tables_declare(tmp_path):
    """A column or index added to tables.py without a migration would exist in tests' fresh stores but
    never in a deployed one."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from serving.database import migrate
    from serving.tables import Base

    engine = make_engine(f"sqlite:///{tmp_path}/audit.db")
    migrate(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_readiness_gives_up_on_a_locked_sqlite_store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/audit.db")
    migrate(engine)
    readiness_gives_up_on_a_locked_store(engine, "BEGIN EXCLUSIVE")
