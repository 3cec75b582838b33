"""validate -> dump gives back the same JSON: our fixtures and every payload of the conformance kits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tmf_models import common, tmf621, tmf622, tmf676, tmf678
from tmf_models.common import TMFModel

FIXTURES = Path(__file__).resolve().parent / "fixtures"

FIXTURE_MODELS: dict[str, type[TMFModel]] = {
    "product_order_broadband.json": tmf622.ProductOrder,
    "product_order_full.json": tmf622.ProductOrder,
    "cancel_product_order.json": tmf622.CancelProductOrder,
    "customer_bill_monthly.json": tmf678.CustomerBill,
    "customer_bill_on_demand.json": tmf678.CustomerBillOnDemand,
    "applied_customer_billing_rate.json": tmf678.AppliedCustomerBillingRate,
    "trouble_ticket_broadband.json": tmf621.TroubleTicket,
    "payment_two_bills.json": tmf676.Payment,
    "refund_partial.json": tmf676.Refund,
    "event_product_order_state_change.json": tmf622.ProductOrderStateChangeEvent,
}

# What each API validates a request body with, by (api, path segment, method).
REQUEST_MODELS: dict[tuple[str, str, str], type[TMFModel]] = {
    ("tmf622", "productOrder", "POST"): tmf622.ProductOrder_Create,
    ("tmf622", "productOrder", "PATCH"): tmf622.ProductOrder_Update,
    ("tmf622", "cancelProductOrder", "POST"): tmf622.CancelProductOrder_Create,
    ("tmf678", "customerBill", "PATCH"): tmf678.CustomerBill_Update,
    ("tmf678", "customerBillOnDemand", "POST"): tmf678.CustomerBillOnDemand_Create,
    ("tmf621", "troubleTicket", "POST"): tmf621.TroubleTicket_Create,
    ("tmf621", "troubleTicket", "PATCH"): tmf621.TroubleTicket_Update,
    ("tmf676", "payment", "POST"): tmf676.Payment_Create,
    ("tmf676", "refund", "POST"): tmf676.Refund_Create,
}


def assert_round_trip(model: type[TMFModel], payload: Any) -> TMFModel:
    """Both paths (dict and JSON bytes) give back the payload."""
    instance = model.model_validate(payload)
    assert common.dump(instance) == payload
    assert instance.model_dump(mode="json", by_alias=True, exclude_unset=True) == payload
    assert json.loads(common.dump_json(instance)) == payload
    from_json = model.model_validate_json(json.dumps(payload))
    assert json.loads(common.dump_json(from_json)) == payload
    return instance


def test_every_fixture_is_mapped() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(FIXTURE_MODELS)


@pytest.mark.parametrize("name", sorted(FIXTURE_MODELS))
def test_fixture_round_trip(name: str) -> None:
    payload = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert_round_trip(FIXTURE_MODELS[name], payload)


def test_broadband_order_is_what_the_issue_describes() -> None:
    order = tmf622.ProductOrder.model_validate_json((FIXTURES / "product_order_broadband.json").read_bytes())
    assert order.id and order.href and order.order_date
    assert order.state is tmf622.ProductOrderStateType.in_progress
    assert len(order.product_order_item) == 2
    first = order.product_order_item[0]
    assert first.item_price and first.item_price[0].price and first.item_price[0].price.tax_included_amount
    assert first.product and first.product.product_characteristic and first.product.place
    assert first.product.place[0].role == "installationAddress"
    # The address is given by value: GeographicAddress attributes ride along as extras.
    assert first.product.place[0].model_extra == {
        "streetNr": "12",
        "streetName": "Rue des Lilas",
        "postcode": "75011",
        "city": "Paris",
        "country": "FR",
    }
    assert order.related_party and {p.role for p in order.related_party} == {"customer", "seller"}


def test_ctk_payload(ctk_payload: Any, ctk_dir: Path) -> None:
    assert ctk_payload is not None, "reference folder present but no payloads collected"
    model = REQUEST_MODELS[(ctk_payload.api, ctk_payload.resource, ctk_payload.method)]
    if ctk_payload.expect_valid:
        assert_round_trip(model, ctk_payload.body)
    else:
        with pytest.raises(ValidationError):
            model.model_validate(ctk_payload.body)


def test_ctk_kits_cover_all_four_apis(all_ctk_payloads: list[Any]) -> None:
    assert {c.api for c in all_ctk_payloads} == {"tmf622", "tmf678", "tmf621", "tmf676"}
    # The two TMF621 bodies the kit expects a 400 for are among them.
    assert sum(not c.expect_valid for c in all_ctk_payloads) == 2
