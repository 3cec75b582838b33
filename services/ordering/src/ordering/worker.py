"""Fulfilment and cancellation worker: runs inside the service, claims due rows with SKIP LOCKED."""

from __future__ import annotations

import asyncio
import logging

from switchboard_kit.app import Runtime
from switchboard_kit.context import correlation_id
from switchboard_kit.events import utc_now

from .provisioning import ProvisioningAdapter
from .repository import CancelRepository, OrderRepository
from .service import OrderService

log = logging.getLogger("ordering.worker")


class FulfilmentWorker:
    def __init__(
        self, service: OrderService, adapter: ProvisioningAdapter, *, poll_interval: float, batch_size: int
    ) -> None:
        self.service = service
        self.adapter = adapter
        self.poll_interval = poll_interval
        self.batch_size = batch_size

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
        """One pass: each due order or cancellation advances in its own transaction."""
        worked = 0
        async with runtime.sessionmaker() as session, session.begin():
            for row in await CancelRepository(session).due(utc_now(), self.batch_size):
                token = correlation_id.set(row.correlation_id)
                try:
                    async with session.begin_nested():
                        await self.service.advance_cancel(session, row)
                finally:
                    correlation_id.reset(token)
                worked += 1
        async with runtime.sessionmaker() as session, session.begin():
            for row in await OrderRepository(session).due(utc_now(), self.batch_size):
                token = correlation_id.set(row.correlation_id)
                try:
                    async with session.begin_nested():
                        await self.service.fulfil(session, row, self.adapter)
                finally:
                    correlation_id.reset(token)
                worked += 1
        return worked
