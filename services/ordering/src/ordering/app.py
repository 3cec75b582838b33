"""create_app(): the ordering service (TMF622 Product Ordering v4)."""

from __future__ import annotations

from fastapi import FastAPI

from switchboard_kit.app import create_service_app

from . import events, resources
from .catalog import Catalog
from .config import Settings
from .models import kit
from .provisioning import SimulatedProvisioning
from .service import OrderService
from .worker import fulfilment_scheduler

BASE_PATH = "/tmf-api/productOrderingManagement/v4"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    catalog = Catalog.load(settings.catalog_path)
    base_url = settings.public_base_url.rstrip("/") + BASE_PATH
    service = OrderService(
        catalog,
        base_url=base_url,
        provisioning_delay=settings.provisioning_delay_seconds,
        cancellation_delay=settings.cancellation_delay_seconds,
    )
    adapter = SimulatedProvisioning(
        fallout_rate=settings.provisioning_fallout_rate,
        pending_rate=settings.provisioning_pending_rate,
        seed=settings.provisioning_seed,
    )
    scheduler = fulfilment_scheduler(
        service, adapter, poll_interval=settings.worker_poll_interval, batch_size=settings.worker_batch_size
    )

    app = create_service_app(
        name="ordering",
        title="Switchboard Product Ordering (TMF622)",
        version="4.0.0",
        description="TMF622 Product Ordering Management v4 with order capture validation, fulfilment and cancellation.",
        settings=settings,
        base_path=BASE_PATH,
        metadata_tables=kit,
        resources=resources.declare(service),
        topics=events.TOPICS,
        scheduler=scheduler if settings.worker_enabled else None,
    )
    app.state.order_service = service
    app.state.provisioning = adapter
    app.state.scheduler = scheduler  # tests run its passes: scheduler.tick(runtime.store)
    return app
