"""Charges from orders: billing consumes ``tmf622.productOrder`` with the kit's consumer.

The kit runs the handler once per event (its processed_event row commits with the effects); an
order's charges are also claimed per order (:meth:`BillingService.charge_order`), so the several
events of one completed order, or a replay, charge it once."""

from __future__ import annotations

from typing import Any

from switchboard_kit.consumer import Consumer, TmfEvent
from switchboard_kit.events import utc_now
from switchboard_kit.store import UnitOfWork

from .service import BillingService, parse_datetime

ORDER_TOPIC = "tmf622.productOrder"
GROUP = "billing-orders"


def order_consumer(service: BillingService, *, topic: str = ORDER_TOPIC, group: str = GROUP) -> Consumer[Any]:
    async def on_order(event: TmfEvent, uow: UnitOfWork) -> None:
        order = event.resource
        if not isinstance(order, dict) or order.get("state") != "completed" or not order.get("id"):
            return  # only a completed order charges; cancelled, failed and rejected ones charge nothing
        at = parse_datetime(event.eventTime) if event.eventTime else utc_now()
        await service.charge_order(uow, order, at=at)

    return Consumer(topic=topic, group=group, handler=on_order)
