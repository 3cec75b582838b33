"""retention.sweep deletes only bookkeeping rows past their retention, in batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from switchboard_dev import testing
from switchboard_kit import db, retention

pytestmark = pytest.mark.asyncio

metadata = db.new_metadata()
kit = db.kit_tables(metadata)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def kit_db(pg_server_url: str) -> Iterator[str]:
    with testing.database_with(pg_server_url, metadata, "sb_retention_test") as url:
        yield url


SEED = """
INSERT INTO outbox (id, topic, key, event_type, payload, published_at, created_at)
SELECT gen_random_uuid(), 't', 'k', 'E', '{}', p, now() - interval '20 days'
FROM (VALUES (now() - interval '10 days'), (now() - interval '10 days'), (now() - interval '10 days'),
             (now() - interval '1 hour'), (NULL)) AS v(p);
INSERT INTO hub_subscription (id, callback) VALUES ('s1', 'http://x');
INSERT INTO hub_delivery (subscription_id, event_id, event_type, payload, delivered_at, failed_at)
VALUES ('s1', gen_random_uuid(), 'E', '{}', now() - interval '10 days', NULL),
       ('s1', gen_random_uuid(), 'E', '{}', NULL, now() - interval '10 days'),
       ('s1', gen_random_uuid(), 'E', '{}', now() - interval '1 hour', NULL),
       ('s1', gen_random_uuid(), 'E', '{}', NULL, NULL);
INSERT INTO processed_event (consumer, event_id, processed_at)
VALUES ('c', 'old', now() - interval '40 days'), ('c', 'new', now() - interval '10 days');
INSERT INTO idempotency_key (scope, key, request_hash, status_code, headers, created_at)
VALUES ('POST /x', 'old', 'h', 201, '{}', now() - interval '2 days'),
       ('POST /x', 'new', 'h', 201, '{}', now());
"""


async def test_only_rows_past_their_retention_go(kit_db: str) -> None:
    engine = db.create_engine(kit_db)
    maker = db.sessionmaker(engine)
    try:
        async with engine.begin() as conn:
            for statement in filter(str.strip, SEED.split(";")):
                await conn.execute(text(statement))
        kept = retention.Retention(
            outbox=7 * DAY, hub_delivery=7 * DAY, processed_event=30 * DAY, idempotency_key=DAY
        )
        deleted = await retention.sweep(maker, kit, kept, batch=2)  # batches smaller than the work
        assert deleted == {"outbox": 3, "hub_delivery": 2, "processed_event": 1, "idempotency_key": 1}
        async with engine.connect() as conn:
            outbox = (
                (await conn.execute(text("SELECT published_at IS NULL FROM outbox ORDER BY 1")))
                .scalars()
                .all()
            )
            pending = (
                await conn.execute(
                    text("SELECT count(*) FROM hub_delivery WHERE delivered_at IS NULL AND failed_at IS NULL")
                )
            ).scalar_one()
            events = (await conn.execute(text("SELECT event_id FROM processed_event"))).scalars().all()
            keys = (await conn.execute(text("SELECT key FROM idempotency_key"))).scalars().all()
        assert outbox == [False, True]  # the recent published row and the unpublished one
        assert pending == 1
        assert events == ["new"] and keys == ["new"]
        assert await retention.sweep(maker, kit, kept) == {
            "outbox": 0,
            "hub_delivery": 0,
            "processed_event": 0,
            "idempotency_key": 0,
        }
        nothing = retention.Retention(timedelta(0), timedelta(0), timedelta(0), timedelta(0))
        assert await retention.sweep(maker, kit, nothing) == {}
    finally:
        await engine.dispose()


async def test_one_instance_sweeps_at_a_time(kit_db: str) -> None:
    engine = db.create_engine(kit_db)
    maker = db.sessionmaker(engine)
    lock = retention.lock_key(kit)
    try:
        async with engine.connect() as holder:
            await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock})
            kept = retention.Retention(DAY, DAY, DAY, DAY)
            assert await retention.sweep(maker, kit, kept) == {}  # another instance holds it
            await holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock})
    finally:
        await engine.dispose()
