from __future__ import annotations

from alembic import command
from alembic.config import Config

from switchboard_dev import testing

from ..conftest import SERVICE_DIR


def config(url: str) -> Config:
    return testing.alembic_config(SERVICE_DIR / "alembic.ini", url)


def test_models_match_migrations(payment_db: str) -> None:
    """`alembic check`: the tables and the migration history describe the same schema."""
    command.check(config(payment_db))


def test_downgrade_and_upgrade_again(pg_server_url: str) -> None:
    url = testing.create_database(pg_server_url, "sb_payment_migrate")
    try:
        testing.migrate(SERVICE_DIR / "alembic.ini", url)
        command.downgrade(config(url), "base")
        command.upgrade(config(url), "head")
        command.check(config(url))
    finally:
        testing.drop_database(url)
