"""The TMF678 resources and the billingAccount extension, each declared once: the kit serves and
documents them from here."""

from __future__ import annotations

from datetime import datetime

from switchboard_kit.auth import AGENT, CUSTOMER, INTEGRATION, MANAGER
from switchboard_kit.query import HotColumn
from switchboard_kit.resource import Resource
from tmf_models import tmf678

from . import events
from .models import applied_customer_billing_rate, billing_account, customer_bill, customer_bill_on_demand
from .schemas import BillingAccount
from .service import (
    BILL_SERVER_OWNED,
    ON_DEMAND_SERVER_OWNED,
    BillingService,
    account_columns,
    bill_columns,
    on_demand_columns,
    party_ids,
    rate_columns,
)

STAFF = (AGENT, MANAGER, INTEGRATION)


def declare(service: BillingService) -> list[Resource]:
    bill = Resource(
        name="customerBill",
        model=tmf678.CustomerBill,
        update_model=tmf678.CustomerBill_Update,
        table=customer_bill,
        hot={
            "id": HotColumn(customer_bill.c.id),
            "state": HotColumn(customer_bill.c.state),
            "billDate": HotColumn(customer_bill.c.bill_date, python_type=datetime),
            "billingAccount.id": HotColumn(customer_bill.c.account_id),
            "relatedParty.id": HotColumn(customer_bill.c.party_ids, many=True),
        },
        columns=bill_columns,
        sort=("billDate", "state", "id"),
        filters=("runType", "billNo"),
        default_order=(customer_bill.c.bill_date.desc(), customer_bill.c.id),
        events=events.BILL,
        server_owned=BILL_SERVER_OWNED,
        on_patch=service.patch_bill,
        # Bills are made by bill runs and bills on demand; staff put them on hold and release them.
        # A customer reads its own party's bills.
        roles={
            "list": (*STAFF, CUSTOMER),
            "retrieve": (*STAFF, CUSTOMER),
            "patch": STAFF,
        },
        owner=party_ids,
        owner_filter="relatedParty.id",
        descriptions={
            "patch": "Changes the state of a CustomerBill (only `state` may change): new -> validated -> sent "
            "by a client; `onHold` from any state, and from onHold back to the state the hold interrupted. "
            "partiallyPaid and settled follow payments. Patching the current state is a 200 that changes "
            "nothing; any other change is a 409.",
        },
    )
    on_demand = Resource(
        name="customerBillOnDemand",
        model=tmf678.CustomerBillOnDemand,
        create_model=tmf678.CustomerBillOnDemand_Create,
        table=customer_bill_on_demand,
        hot={
            "id": HotColumn(customer_bill_on_demand.c.id),
            "state": HotColumn(customer_bill_on_demand.c.state),
            "billingAccount.id": HotColumn(customer_bill_on_demand.c.account_id),
        },
        columns=on_demand_columns,
        sort=("id", "state"),
        default_order=(customer_bill_on_demand.c.created_at.desc(), customer_bill_on_demand.c.id),
        events=events.ON_DEMAND,
        server_owned=ON_DEMAND_SERVER_OWNED,
        on_create=service.create_on_demand,
        hook_errors={"create": (400,)},
        roles={"list": STAFF, "retrieve": STAFF, "create": STAFF},
        descriptions={
            "create": "Requests a bill now. The request is accepted `inProgress`; moments later it is `done` "
            "with an offCycle bill of the account's unbilled charges so far (linked in `customerBill`), or "
            "`rejected` with the reason in `stateReason` (no billingAccount named, an unknown account, or "
            "nothing to bill).",
        },
    )
    rate = Resource(
        name="appliedCustomerBillingRate",
        model=tmf678.AppliedCustomerBillingRate,
        table=applied_customer_billing_rate,
        hot={
            "id": HotColumn(applied_customer_billing_rate.c.id),
            "isBilled": HotColumn(applied_customer_billing_rate.c.is_billed, python_type=bool),
            "billingAccount.id": HotColumn(applied_customer_billing_rate.c.account_id),
            "bill.id": HotColumn(applied_customer_billing_rate.c.bill_id),
            "date": HotColumn(applied_customer_billing_rate.c.charge_date, python_type=datetime),
        },
        columns=rate_columns,
        sort=("date", "id"),
        filters=("type", "product.id"),
        default_order=(
            applied_customer_billing_rate.c.charge_date.desc(),
            applied_customer_billing_rate.c.id,
        ),
        events=events.RATE,
        roles={"list": STAFF, "retrieve": STAFF},
        descriptions={
            "list": "Lists the charges billing made from completed orders and bill runs (TMF630 filters, "
            "fields, offset/limit, sort). `isBilled=false` lists the charges no bill holds yet.",
        },
    )
    account = Resource(
        name="billingAccount",
        model=BillingAccount,
        table=billing_account,
        hot={
            "id": HotColumn(billing_account.c.id),
            "status": HotColumn(billing_account.c.status),
            "currency": HotColumn(billing_account.c.currency),
        },
        columns=account_columns,
        sort=("id", "billCycleDay"),
        filters=("billCycleDay",),  # on the document: any integer a client sends is a filter, never a 400
        default_order=(billing_account.c.id,),
        events=events.ACCOUNT,
        roles={"list": STAFF, "retrieve": STAFF},
        descriptions={
            "list": "Lists the billing accounts billing knows (an extension of TMF678, read-only): learned "
            "from the orders it consumes, each with its currency, bill cycle day, payment terms, and the "
            "tax rate of its tax zone.",
            "retrieve": "Retrieves a billing account (an extension of TMF678, read-only).",
        },
    )
    return [bill, on_demand, rate, account]
