"""create_app(): the billing service (TMF678 Customer Bill Management v4)."""

from __future__ import annotations

from fastapi import FastAPI

from switchboard_kit.app import create_service_app

from . import events, resources
from .charges import order_consumer
from .config import Settings
from .models import kit
from .service import BillingService
from .worker import billing_scheduler

BASE_PATH = "/tmf-api/customerBillManagement/v4"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    base_url = settings.public_base_url.rstrip("/") + BASE_PATH
    service = BillingService(
        base_url=base_url,
        tax_rates=settings.tax_rates,
        default_currency=settings.default_currency,
        default_bill_cycle_day=settings.default_bill_cycle_day,
        default_payment_terms_days=settings.default_payment_terms_days,
        default_tax_zone=settings.default_tax_zone,
    )
    scheduler = billing_scheduler(
        service,
        cycle_cron=settings.bill_cycle_cron,
        poll_interval=settings.worker_poll_interval,
        batch_size=settings.worker_batch_size,
    )
    app = create_service_app(
        name="billing",
        title="Switchboard Customer Bill (TMF678)",
        version="4.0.0",
        description="TMF678 Customer Bill Management v4: charges from completed orders, bill runs and bills "
        "on demand.",
        settings=settings,
        base_path=BASE_PATH,
        metadata_tables=kit,
        resources=resources.declare(service),
        topics=events.TOPICS,
        scheduler=scheduler if settings.worker_enabled else None,
        consumers=[order_consumer(service, topic=settings.orders_topic, group=settings.orders_group)],
    )
    app.state.billing_service = service
    app.state.scheduler = scheduler  # tests run its passes: scheduler.tick(runtime.store)
    return app
