from __future__ import annotations

from alembic import command
from alembic.config import Config

from switchboard_dev import testing

from ..conftest import SERVICE_DIR


def config(url: str) -> Config:
    return testing.alembic_config(SERVICE_DIR / "alembic.ini", url)


def test_models_match_migrations(ordering_db: str) -> None:
    """`alembic check`: the ORM tables and the migration history describe the same schema."""
    command.check(config(ordering_db))


def test_downgrade_and_upgrade_again(pg_server_url: str) -> None:
    url = testing.create_database(pg_server_url, "sb_ordering_migrate")
    try:
        testing.migrate(SERVICE_DIR / "alembic.ini", url)
        command.downgrade(config(url), "base")
        command.upgrade(config(url), "head")
        command.check(config(url))
    finally:
        testing.drop_database(url)


def test_documents_use_lz4_where_the_server_offers_it(pg_server_url: str) -> None:
    import asyncio

    import asyncpg

    url = testing.create_database(pg_server_url, "sb_ordering_lz4")

    async def methods() -> tuple[bool, dict[str, str]]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            offered = await conn.fetchval(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
            )
            rows = await conn.fetch(
                "SELECT attrelid::regclass::text AS t, attcompression::text AS c FROM pg_attribute"
                " WHERE (attrelid::regclass::text, attname) IN"
                " (('product_order', 'doc'), ('cancel_product_order', 'doc'), ('outbox', 'payload'),"
                " ('hub_delivery', 'payload'))"
            )
            return bool(offered), {r["t"]: r["c"] for r in rows}
        finally:
            await conn.close()

    try:
        testing.migrate(SERVICE_DIR / "alembic.ini", url)
        offered, compression = asyncio.run(methods())
        assert len(compression) == 4
        assert set(compression.values()) == ({"l"} if offered else {""})
        command.downgrade(config(url), "0001")
        assert set(asyncio.run(methods())[1].values()) == ({"p"} if offered else {""})
    finally:
        testing.drop_database(url)
