"""The SLA timers: due work of the kit's scheduler (switchboard_kit.schedule).

A ticket's ``next_action_at`` is its next warning or breach (NULL while its clocks are paused). When
it comes, the ticket is claimed with SKIP LOCKED (replicas share the rows), the events due are
emitted and marked fired in the same unit of work, so each fires once, restarts included. A clock
started under another version of the policy is re-planned first (its used time kept)."""

from __future__ import annotations

from switchboard_kit.schedule import Backoff, Clock, DueWork, Schedule, Scheduler

from .models import trouble_ticket
from .service import TicketService


def sla_scheduler(
    service: TicketService,
    *,
    poll_interval: float,
    batch_size: int,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
) -> Scheduler:
    return Scheduler(
        due=[DueWork(trouble_ticket, service.sla_step, batch_size=batch_size, backoff=backoff or Backoff())],
        # Every five minutes, running clocks of an older policy version are made due (and so re-planned).
        schedules=[Schedule("sla-policy-replan", "*/5 * * * *", service.replan_all)],
        clock=clock,
        poll_interval=poll_interval,
    )
