"""create_app(): the trouble ticket service (TMF621 Trouble Ticket Management v4)."""

from __future__ import annotations

from fastapi import FastAPI

from switchboard_kit.app import create_service_app
from switchboard_kit.schedule import Clock, SystemClock

from . import events, resources
from .config import Settings
from .models import kit
from .service import TicketService
from .sla import Policy
from .worker import sla_scheduler

BASE_PATH = "/tmf-api/troubleTicket/v4"


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """``clock``: where the SLA clocks and timers read the time (tests pass a ManualClock)."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    service = TicketService(Policy.load(settings.sla_policy_path), clock=clock.now)
    scheduler = sla_scheduler(
        service,
        poll_interval=settings.worker_poll_interval,
        batch_size=settings.worker_batch_size,
        clock=clock,
    )
    app = create_service_app(
        name="trouble_ticket",
        title="Switchboard Trouble Ticket (TMF621)",
        version="4.0.0",
        description="TMF621 Trouble Ticket Management v4 with a status lifecycle, its history and SLA clocks "
        "that pause while a ticket waits.",
        settings=settings,
        base_path=BASE_PATH,
        metadata_tables=kit,
        resources=resources.declare(service),
        topics=events.TOPICS,
        scheduler=scheduler if settings.worker_enabled else None,
    )
    app.state.ticket_service = service
    app.state.scheduler = scheduler  # tests run its passes: scheduler.tick(runtime.store)
    return app
