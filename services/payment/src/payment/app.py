"""create_app(): the payment service (TMF676 Payment Management v4)."""

from __future__ import annotations

from fastapi import FastAPI

from switchboard_kit.app import create_service_app
from switchboard_kit.schedule import Clock

from . import events, resources
from .config import Settings
from .gateway import Gateway, SimulatedGateway
from .models import kit
from .service import PaymentService
from .worker import reconciliation_scheduler

BASE_PATH = "/tmf-api/paymentManagement/v4"


def create_app(
    settings: Settings | None = None, *, gateway: Gateway | None = None, clock: Clock | None = None
) -> FastAPI:
    """The app; ``gateway`` (default: the simulated one) and ``clock`` are for tests."""
    settings = settings or Settings()
    base_url = settings.public_base_url.rstrip("/") + BASE_PATH
    if gateway is None:
        gateway = SimulatedGateway(
            latency=settings.gateway_latency_seconds,
            late_success_after=settings.gateway_late_success_seconds,
            clock=clock,
        )
    service = PaymentService(
        gateway,
        base_url=base_url,
        gateway_timeout=settings.gateway_timeout_seconds,
        reconcile_delay=settings.reconcile_delay_seconds,
        clock=clock,
    )
    scheduler = reconciliation_scheduler(
        service, poll_interval=settings.worker_poll_interval, batch_size=settings.worker_batch_size
    )
    app = create_service_app(
        name="payment",
        title="Switchboard Payment Management (TMF676)",
        version="4.0.0",
        description="TMF676 Payment Management v4: payments through a gateway adapter, refunds, reconciliation.",
        settings=settings,
        base_path=BASE_PATH,
        metadata_tables=kit,
        resources=resources.declare(service),
        topics=events.TOPICS,
        scheduler=scheduler if settings.worker_enabled else None,
    )
    app.state.payment_service = service
    app.state.gateway = gateway
    app.state.scheduler = scheduler  # tests run its passes: scheduler.tick(runtime.store)
    return app
