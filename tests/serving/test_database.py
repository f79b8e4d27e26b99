"""Connection pools sized from the settings, so an operator can budget PostgreSQL's connections."""

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from serving.app import create_app
from serving.settings import Settings


def test_pool_settings_bound_the_connections_a_worker_opens(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("REINTEGRA_DB_POOL_SIZE", "1")
    monkeypatch.setenv("REINTEGRA_DB_MAX_OVERFLOW", "0")
    app = create_app(Settings(audit_url=f"sqlite:///{tmp_path}/audit.db", poll_seconds=0))
    audit = app.state.audit.engine
    assert audit.pool.size() == 1
    with audit.connect(), pytest.raises(PoolTimeout):
        audit.connect()
