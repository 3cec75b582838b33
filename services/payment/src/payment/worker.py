"""Reconciliation: due work of the kit's scheduler (switchboard_kit.schedule).

A payment or refund whose gateway answer is unknown (a timeout) stays ``pendingAuthorization`` with a
``next_action_at``; each time it comes due, the gateway is asked again (with the same idempotency key,
so nothing is charged twice) until it says what became of the request. An authorized payment whose
capture got no answer is captured again the same way."""

from __future__ import annotations

from switchboard_kit.schedule import Backoff, Clock, DueWork, Scheduler

from .models import payment, refund
from .service import PaymentService


def reconciliation_scheduler(
    service: PaymentService,
    *,
    poll_interval: float,
    batch_size: int,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
) -> Scheduler:
    backoff = backoff or Backoff()
    return Scheduler(
        due=[
            DueWork(payment, service.reconcile_payment, batch_size=batch_size, backoff=backoff),
            DueWork(refund, service.reconcile_refund, batch_size=batch_size, backoff=backoff),
        ],
        clock=clock or service.clock,
        poll_interval=poll_interval,
    )
