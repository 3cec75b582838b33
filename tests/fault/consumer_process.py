"""The fault harness's consumer as a process of its own, so that a test can kill it (SIGKILL).

    python -m tests.fault.consumer_process CONSUMER_DATABASE_URL BOOTSTRAP

Each record takes a few milliseconds (``FAULT_CONSUMER_DELAY``, seconds), so that a kill lands in
the middle of a batch: some records' effects committed, their offsets not yet.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from switchboard_kit import consumer, db
from switchboard_kit.store import Store, UnitOfWork
from tests.fault.harness import GROUP, TOPIC, apply, consumer_kit


async def main(database_url: str, bootstrap: str) -> None:
    delay = float(os.environ.get("FAULT_CONSUMER_DELAY", "0.005"))

    async def slow_apply(event: consumer.TmfEvent, uow: UnitOfWork) -> None:
        await asyncio.sleep(delay)
        await apply(event, uow)

    engine = db.create_engine(database_url, pool_size=2, max_overflow=0)
    runner = consumer.ConsumerRunner(
        consumer.Consumer(TOPIC, GROUP, slow_apply), Store(engine, consumer_kit), bootstrap=bootstrap
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, runner.stop)
    try:
        await runner.run()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
