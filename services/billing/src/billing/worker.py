"""Bill runs and bills on demand: work of the kit's scheduler (switchboard_kit.schedule).

- ``bill-cycle``: a daily schedule; each run bills the accounts whose bill cycle day it is (one onCycle
  bill each, see :meth:`BillingService.run_cycle`).
- due customerBillOnDemand requests: each makes its offCycle bill or is rejected, in its own savepoint."""

from __future__ import annotations

from datetime import datetime

from switchboard_kit.schedule import Backoff, Clock, DueWork, Schedule, Scheduler
from switchboard_kit.store import UnitOfWork

from .models import customer_bill_on_demand
from .service import BillingService


def billing_scheduler(
    service: BillingService,
    *,
    cycle_cron: str,
    poll_interval: float,
    batch_size: int,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
) -> Scheduler:
    async def bill_cycle(uow: UnitOfWork, tick_at: datetime) -> None:
        await service.run_cycle(uow, tick_at)

    backoff = backoff or Backoff()
    return Scheduler(
        due=[DueWork(customer_bill_on_demand, service.run_on_demand, batch_size=batch_size, backoff=backoff)],
        schedules=[Schedule("bill-cycle", cycle_cron, bill_cycle, backoff=backoff)],
        clock=clock,
        poll_interval=poll_interval,
    )
