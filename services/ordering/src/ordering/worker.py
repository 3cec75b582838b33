"""Fulfilment and cancellation worker: runs inside the service, claims due rows with SKIP LOCKED."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import Table

from switchboard_kit.app import Runtime
from switchboard_kit.context import correlation_id
from switchboard_kit.events import utc_now
from switchboard_kit.store import Store, Stored, UnitOfWork

from .models import cancel_product_order, product_order
from .provisioning import ProvisioningAdapter
from .service import OrderService

log = logging.getLogger("ordering.worker")

# How long an order or cancellation whose step failed waits before the worker tries it again: long
# enough not to flood the log or starve the others, short enough that a transient fault heals by itself.
RETRY_AFTER_FAILURE = timedelta(minutes=1)

Step = Callable[[UnitOfWork, Stored], Awaitable[None]]


class FulfilmentWorker:
    def __init__(
        self,
        service: OrderService,
        adapter: ProvisioningAdapter,
        *,
        poll_interval: float,
        batch_size: int,
        retry_after_failure: timedelta = RETRY_AFTER_FAILURE,
    ) -> None:
        self.service = service
        self.adapter = adapter
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.retry_after_failure = retry_after_failure

    async def run(self, runtime: Runtime) -> None:
        while True:
            try:
                worked = await self.step(runtime)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fulfilment step failed")
                worked = 0
            if worked == 0:
                await asyncio.sleep(self.poll_interval)

    async def step(self, runtime: Runtime) -> int:
        """One pass over the due cancellations, then the due orders; returns how many advanced.

        Each row advances inside its own savepoint. A row whose step fails is rolled back to it, logged
        with its id, and postponed by ``retry_after_failure``; the rest of the batch still commits."""

        async def fulfil(uow: UnitOfWork, row: Stored) -> None:
            await self.service.fulfil(uow, row, self.adapter)

        worked = await self._pass(runtime.store, cancel_product_order, self.service.advance_cancel)
        return worked + await self._pass(runtime.store, product_order, fulfil)

    async def _pass(self, store: Store, table: Table, advance: Step) -> int:
        worked = 0
        async with store.unit_of_work() as uow:
            for row in await uow.due(table, utc_now(), self.batch_size):
                worked += await self._advance(uow, table, row, advance)
        return worked

    async def _advance(self, uow: UnitOfWork, table: Table, row: Stored, advance: Step) -> int:
        token = correlation_id.set(row.columns.get("correlation_id"))
        try:
            try:
                async with uow.savepoint():
                    await advance(uow, row)
            except Exception:
                retry_at = utc_now() + self.retry_after_failure
                log.exception(
                    "%s %s failed in state %s; rolled back, next attempt at %s",
                    table.name,
                    row.id,
                    row.columns.get("state"),
                    retry_at.isoformat(),
                )
                await uow.set_columns(table, row.id, {"next_action_at": retry_at})
                return 0
            return 1
        finally:
            correlation_id.reset(token)
