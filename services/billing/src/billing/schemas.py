"""The billingAccount extension resource: what billing keeps of an account (not a TMF678 resource)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StrictStr

from tmf_models import tmf678
from tmf_models._base import Number, TMFModel


class BillingAccount(TMFModel):
    """A billing account as billing knows it: learned from the orders it consumes (or seeded), with the
    currency its bills are in, its bill cycle day, its payment terms and the tax rate of its tax zone
    (from the service's configured table). Read-only."""

    id: Annotated[StrictStr, Field(description="Identifier of the billing account (as orders name it)")]
    href: Annotated[StrictStr | None, Field(description="Reference of the billing account")] = None
    name: Annotated[StrictStr | None, Field(description="Name of the billing account")] = None
    status: Annotated[StrictStr | None, Field(description="active or closed")] = None
    currency: Annotated[StrictStr | None, Field(description="ISO 4217 code of its bills' currency")] = None
    bill_cycle_day: Annotated[
        StrictInt | None,
        Field(alias="billCycleDay", ge=1, le=28, description="Day of the month its billing periods start"),
    ] = None
    payment_terms_days: Annotated[
        StrictInt | None,
        Field(alias="paymentTermsDays", ge=0, description="Days from a bill's date to its paymentDueDate"),
    ] = None
    tax_zone: Annotated[
        StrictStr | None, Field(alias="taxZone", description="Key of its tax rate in the configured table")
    ] = None
    tax_rate: Annotated[
        Number | None, Field(alias="taxRate", description="Tax rate of its zone, in percent")
    ] = None
    related_party: Annotated[list[tmf678.RelatedPartyRef] | None, Field(alias="relatedParty")] = None
    type_: Annotated[StrictStr | None, Field(alias="@type")] = None
