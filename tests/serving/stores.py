"""Audit stores as an older release left them, for tests of upgrades and of commands that refuse them."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def upgrade_to(engine: Engine, revision: str) -> None:
    """Migrate the store only as far as `revision`, as the release that ended there would have."""
    config = Config()
    config.set_main_option("script_location", "serving:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
