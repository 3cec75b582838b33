"""The TMF676 resources, each declared once: the kit serves and documents them from here."""

from __future__ import annotations

from datetime import datetime

from switchboard_kit.auth import AGENT, CUSTOMER, INTEGRATION, MANAGER
from switchboard_kit.query import HotColumn
from switchboard_kit.resource import Resource
from tmf_models import tmf676

from . import events
from .models import payment, refund
from .service import (
    REFUND_SERVER_OWNED,
    SERVER_OWNED,
    PaymentService,
    party_ids,
    payment_columns,
    refund_columns,
)

STAFF = (AGENT, MANAGER, INTEGRATION)


def declare(service: PaymentService) -> list[Resource]:
    payment_resource = Resource(
        name="payment",
        model=tmf676.Payment,
        create_model=tmf676.Payment_Create,
        table=payment,
        hot={
            "id": HotColumn(payment.c.id),
            "status": HotColumn(payment.c.status),
            "paymentDate": HotColumn(payment.c.payment_date, python_type=datetime),
            "account.id": HotColumn(payment.c.account_id),
            "payer.id": HotColumn(payment.c.party_ids, many=True),
        },
        columns=payment_columns,
        sort=("paymentDate", "status", "id"),
        filters=("correlatorId", "href"),
        default_order=(payment.c.payment_date.desc(),),
        events=events.PAYMENT,
        server_owned=SERVER_OWNED,
        on_create=service.create_payment,
        # Staff take payments (agents on the phone, systems); a customer pays as its own payer.
        roles={"list": (*STAFF, CUSTOMER), "retrieve": (*STAFF, CUSTOMER), "create": (*STAFF, CUSTOMER)},
        owner=party_ids,
        owner_filter="payer.id",
        descriptions={
            "create": "Takes a payment through the payment gateway: it is authorized and captured "
            "(status `captured`), `denied` by the gateway (the reason in `statusReason`), or `failed`. "
            "When the gateway does not answer in time the payment stays `pendingAuthorization` and "
            "reconciliation asks the gateway again until it knows; it is never charged twice. Send an "
            "`Idempotency-Key` to retry safely: a retry returns the first payment. Amounts must be "
            "positive, in an ISO 4217 currency, with no more decimals than it allows (else 400). A "
            "customer pays only as its own `payer`.",
        },
    )
    refund_resource = Resource(
        name="refund",
        model=tmf676.Refund,
        create_model=tmf676.Refund_Create,
        table=refund,
        hot={
            "id": HotColumn(refund.c.id),
            "status": HotColumn(refund.c.status),
            "refundDate": HotColumn(refund.c.refund_date, python_type=datetime),
            "payment.id": HotColumn(refund.c.payment_id),
            "account.id": HotColumn(refund.c.account_id),
        },
        columns=refund_columns,
        sort=("refundDate", "status", "id"),
        filters=("correlatorId", "href"),
        default_order=(refund.c.refund_date.desc(),),
        events=events.REFUND,
        server_owned=REFUND_SERVER_OWNED,
        on_create=service.create_refund,
        hook_errors={"create": (404, 409, 422)},
        # Refunds are the care desk's or another system's.
        roles={"list": STAFF, "retrieve": STAFF, "create": STAFF},
        descriptions={
            "create": "Refunds part or all of a captured payment (named in `payment.id`; with an empty "
            "`totalAmount`, all that is left). A refund never exceeds what was captured minus what other "
            "refunds took, even when several arrive at once: more is a 422 and stores nothing. A "
            "payment that is not captured is a 409, an unknown one a 404.",
        },
    )
    return [payment_resource, refund_resource]
