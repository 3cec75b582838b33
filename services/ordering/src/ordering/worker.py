"""Fulfilment and cancellation worker: runs inside the service, claims due rows with SKIP LOCKED."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_kit.app import Runtime
from switchboard_kit.context import correlation_id
from switchboard_kit.events import utc_now

from .provisioning import ProvisioningAdapter
from .repository import CancelRepository, OrderRepository
from .service import OrderService

log = logging.getLogger("ordering.worker")

# How long an order or cancellation whose step failed waits before the worker tries it again: long
# enough not to flood the log or starve the others, short enough that a transient fault heals by itself.
RETRY_AFTER_FAILURE = timedelta(minutes=1)


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
            elif runtime.relay is not None:
                runtime.relay.wake()

    async def step(self, runtime: Runtime) -> int:
        """One pass over the due cancellations, then the due orders; returns how many advanced.

        Each row advances inside its own savepoint. A row whose step fails is rolled back to it, logged
        with its id, and postponed by ``retry_after_failure``; the rest of the batch still commits."""
        worked = 0
        async with runtime.sessionmaker() as session, session.begin():
            cancels = CancelRepository(session)
            for row in await cancels.due(utc_now(), self.batch_size):
                worked += await self._advance(
                    session, row, "cancelProductOrder", self.service.advance_cancel, cancels.postpone
                )
        async with runtime.sessionmaker() as session, session.begin():
            orders = OrderRepository(session)

            async def fulfil(session: AsyncSession, row: Any) -> None:
                await self.service.fulfil(session, row, self.adapter)

            for row in await orders.due(utc_now(), self.batch_size):
                worked += await self._advance(session, row, "productOrder", fulfil, orders.postpone)
        return worked

    async def _advance(
        self,
        session: AsyncSession,
        row: Any,
        kind: str,
        advance: Callable[[AsyncSession, Any], Awaitable[None]],
        postpone: Callable[[str, datetime], Awaitable[None]],
    ) -> int:
        token = correlation_id.set(row.correlation_id)
        try:
            try:
                async with session.begin_nested():
                    await advance(session, row)
            except Exception:
                retry_at = utc_now() + self.retry_after_failure
                log.exception(
                    "%s %s failed in state %s; rolled back, next attempt at %s",
                    kind,
                    row.id,
                    row.state,
                    retry_at.isoformat(),
                )
                await postpone(row.id, retry_at)
                return 0
            return 1
        finally:
            correlation_id.reset(token)
