"""Fulfilment and cancellation: due work of the kit's scheduler (switchboard_kit.schedule).

Each order or cancellation whose ``next_action_at`` has come advances one step inside its own
savepoint; rows are claimed with SKIP LOCKED, so replicas share them. A step that fails is rolled back
alone, logged with the row's id, and retried with the kit's growing backoff; after
``Backoff.max_attempts`` failures the row is parked (``next_action_at`` NULL, ``last_error`` kept)."""

from __future__ import annotations

from switchboard_kit.schedule import Backoff, Clock, DueWork, Scheduler
from switchboard_kit.store import Stored, UnitOfWork

from .models import cancel_product_order, product_order
from .provisioning import ProvisioningAdapter
from .service import OrderService


def fulfilment_scheduler(
    service: OrderService,
    adapter: ProvisioningAdapter,
    *,
    poll_interval: float,
    batch_size: int,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
) -> Scheduler:
    """Due cancellations first, then due orders (a cancellation stops an order's fulfilment)."""

    async def fulfil(uow: UnitOfWork, row: Stored) -> None:
        await service.fulfil(uow, row, adapter)

    backoff = backoff or Backoff()
    return Scheduler(
        due=[
            DueWork(cancel_product_order, service.advance_cancel, batch_size=batch_size, backoff=backoff),
            DueWork(product_order, fulfil, batch_size=batch_size, backoff=backoff),
        ],
        clock=clock,
        poll_interval=poll_interval,
    )
