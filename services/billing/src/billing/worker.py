"""Bill runs and bills on demand: work of the kit's scheduler (switchboard_kit.schedule).

- ``bill-cycle``: a daily schedule; each run bills the accounts whose next cycle date has come (one
  onCycle bill per account and cycle date, see :meth:`BillingService.run_cycle`).
- due customerBillOnDemand requests: each makes its offCycle bill or is rejected, in its own savepoint."""

from __future__ import annotations

from datetime import datetime

from switchboard_kit.schedule import Backoff, Clock, DueWork, Schedule, Scheduler, SystemClock
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
    clock = clock or SystemClock()

    async def bill_cycle(uow: UnitOfWork, tick_at: datetime) -> None:
        # After an outage the run stands for the first tick missed; it bills every cycle date that has
        # come by now, so none is skipped.
        await service.run_cycle(uow, max(tick_at, clock.now()))

    backoff = backoff or Backoff()
    return Scheduler(
        due=[DueWork(customer_bill_on_demand, service.run_on_demand, batch_size=batch_size, backoff=backoff)],
        schedules=[Schedule("bill-cycle", cycle_cron, bill_cycle, backoff=backoff)],
        clock=clock,
        poll_interval=poll_interval,
    )
