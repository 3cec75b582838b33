"""Wire format, strictness and the leniency the conformance kits require."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from tmf_models import common, tmf621, tmf622, tmf676, tmf678

CTK_ORDER = {
    "productOrderItem": [{"id": "123", "action": "add"}],
    "relatedParty": [{"id": "456-dd-df45", "@referredType": "Individual"}],
}
TICKET = {"description": "<anytext>", "severity": "High", "ticketType": "device"}


class TestLeniency:
    """Exactly the cases ../shared/tmf-ctk/README.md lists."""

    def test_tmf622_ctk_create_validates(self) -> None:
        order = tmf622.ProductOrder_Create.model_validate(CTK_ORDER)
        assert order.related_party is not None
        assert order.related_party[0].role is None
        assert common.dump(order) == CTK_ORDER

    def test_tmf676_accepts_empty_payment_method_and_total_amount(self) -> None:
        body = {"account": {"id": "15463151"}, "paymentMethod": {}, "totalAmount": {}}
        payment = tmf676.Payment_Create.model_validate(body)
        assert common.dump(payment) == body
        refund = tmf676.Refund_Create.model_validate(body)
        assert common.dump(refund) == body

    def test_tmf621_create_keeps_an_unknown_status(self) -> None:
        ticket = tmf621.TroubleTicket_Create.model_validate(
            {**TICKET, "status": "nanana", "externalId": "123"}
        )
        assert ticket.status == "nanana"
        assert common.dump(ticket)["status"] == "nanana"

    def test_tmf621_create_reads_a_known_status_as_the_enum(self) -> None:
        ticket = tmf621.TroubleTicket_Create.model_validate({**TICKET, "status": "acknowledged"})
        assert ticket.status is tmf621.TroubleTicketStatusType.acknowledged

    def test_tmf621_update_and_resource_stay_strict_on_status(self) -> None:
        with pytest.raises(ValidationError):
            tmf621.TroubleTicket_Update.model_validate({"status": "nanana"})
        with pytest.raises(ValidationError):
            tmf621.TroubleTicket.model_validate({**TICKET, "status": "nanana"})

    def test_tmf621_note_object_instead_of_array_fails(self) -> None:
        with pytest.raises(ValidationError) as err:
            tmf621.TroubleTicket_Create.model_validate(
                {**TICKET, "ticketType": "problem", "note": {"author": "writer e3_1"}}
            )
        assert err.value.errors()[0]["loc"] == ("note",)

    def test_tmf621_missing_ticket_type_fails(self) -> None:
        with pytest.raises(ValidationError) as err:
            tmf621.TroubleTicket_Create.model_validate({"description": "<anytext>", "severity": "High"})
        assert err.value.errors()[0]["loc"] == ("ticketType",)

    def test_tmf678_ctk_bodies(self) -> None:
        on_demand = tmf678.CustomerBillOnDemand_Create.model_validate({"billingAccount": {"id": "A0815"}})
        assert on_demand.billing_account is not None and on_demand.billing_account.id == "A0815"
        patch = tmf678.CustomerBill_Update.model_validate({"state": "onHold"})
        assert patch.state is tmf678.CustomerBillStateType.on_hold

    def test_product_order_update_is_partial(self) -> None:
        # The v4 swagger requires productOrderItem on PATCH; merge-patch bodies are partial.
        patch = tmf622.ProductOrder_Update.model_validate({"state": "held", "note": None})
        assert common.dump(patch) == {"state": "held", "note": None}


BAD_TYPES: list[tuple[type[common.TMFModel], dict[str, Any], tuple[str | int, ...]]] = [
    # number for string
    (tmf622.ProductOrder_Create, {**CTK_ORDER, "description": 5}, ("description",)),
    (tmf621.TroubleTicket_Create, {**TICKET, "externalId": 123}, ("externalId",)),
    # boolean for string
    (tmf621.TroubleTicket_Create, {**TICKET, "severity": True}, ("severity",)),
    # object for array, array for object
    (
        tmf622.ProductOrder_Create,
        {**CTK_ORDER, "relatedParty": {"id": "1", "@referredType": "x"}},
        ("relatedParty",),
    ),
    (tmf676.Payment_Create, {"account": [{"id": "1"}], "paymentMethod": {}, "totalAmount": {}}, ("account",)),
    # string for integer / number / boolean: no lax coercion
    (
        tmf622.ProductOrder_Create,
        {"productOrderItem": [{"id": "1", "action": "add", "quantity": "5"}]},
        ("productOrderItem", 0, "quantity"),
    ),
    (
        tmf676.Payment_Create,
        {"account": {"id": "1"}, "paymentMethod": {}, "totalAmount": {"value": "5.0"}},
        ("totalAmount", "value"),
    ),
    (tmf678.AppliedCustomerBillingRate, {"id": "1", "isBilled": "true"}, ("isBilled",)),
    # boolean for integer
    (
        tmf622.ProductOrder_Create,
        {"productOrderItem": [{"id": "1", "action": "add", "quantity": True}]},
        ("productOrderItem", 0, "quantity"),
    ),
    # unknown enum values
    (
        tmf622.ProductOrder_Create,
        {"productOrderItem": [{"id": "1", "action": "replace"}]},
        ("productOrderItem", 0, "action"),
    ),
    (tmf622.ProductOrder, {**CTK_ORDER, "state": "done"}, ("state",)),
    # missing required
    (tmf622.ProductOrder_Create, {"productOrderItem": []}, ("productOrderItem",)),
    (tmf622.ProductOrder_Create, {"relatedParty": []}, ("productOrderItem",)),
    (tmf622.ProductOrder_Create, {"productOrderItem": [{"id": "1"}]}, ("productOrderItem", 0, "action")),
    # date-times: numbers, no offset, not a date
    (tmf622.ProductOrder, {**CTK_ORDER, "orderDate": 1_700_000_000}, ("orderDate",)),
    (tmf622.ProductOrder, {**CTK_ORDER, "orderDate": "2026-11-23T12:00:00"}, ("orderDate",)),
    (tmf622.ProductOrder, {**CTK_ORDER, "orderDate": "next tuesday"}, ("orderDate",)),
]


@pytest.mark.parametrize(("model", "body", "loc"), BAD_TYPES)
def test_wrong_types_fail(
    model: type[common.TMFModel], body: dict[str, Any], loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(ValidationError) as err:
        model.model_validate(body)
    assert err.value.errors()[0]["loc"] == loc


class TestWireFormat:
    def test_aliases_and_extension_attributes_round_trip(self) -> None:
        body = {
            **CTK_ORDER,
            "@type": "BroadbandOrder",
            "@baseType": "ProductOrder",
            "@schemaLocation": "https://example.org/BroadbandOrder.schema.json",
            "campaign": {"code": "XMAS", "nested": [1, 2.5, None, True]},
        }
        order = tmf622.ProductOrder_Create.model_validate(body)
        assert order.type_ == "BroadbandOrder"
        assert order.model_extra == {"campaign": {"code": "XMAS", "nested": [1, 2.5, None, True]}}
        assert common.dump(order) == body

    def test_python_names_also_populate(self) -> None:
        order = tmf622.ProductOrder_Create(
            product_order_item=[tmf622.ProductOrderItem(id="1", action=tmf622.OrderItemActionType.add)],
            type_="ProductOrder",
        )
        assert common.dump(order) == {
            "productOrderItem": [{"id": "1", "action": "add"}],
            "@type": "ProductOrder",
        }

    def test_dump_leaves_out_unset_fields_and_can_drop_none(self) -> None:
        order = tmf622.ProductOrder_Create.model_validate({**CTK_ORDER, "description": None})
        assert "description" in common.dump(order)
        assert "description" not in common.dump(order, exclude_none=True)
        assert common.dump_json(order, exclude_none=True) == (
            b'{"productOrderItem":[{"id":"123","action":"add"}],'
            b'"relatedParty":[{"id":"456-dd-df45","@referredType":"Individual"}]}'
        )

    def test_model_fields_expose_alias_and_resolved_annotation(self) -> None:
        field = tmf622.ProductOrder.model_fields["related_party"]
        assert field.alias == "relatedParty"
        assert "RelatedParty" in repr(field.annotation) and "ForwardRef" not in repr(field.annotation)
        status = tmf621.TroubleTicket_Create.model_fields["status"]
        assert "ForwardRef" not in repr(status.annotation)


class TestDateTimes:
    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-23T12:00:00Z",
            "2026-11-23T12:00:00.123Z",
            "2026-11-23T12:00:00.123456Z",
            "2026-11-23T12:00:00.100Z",
        ],
    )
    def test_utc_z_round_trips_exactly(self, text: str) -> None:
        order = tmf622.ProductOrder.model_validate({**CTK_ORDER, "orderDate": text})
        assert common.dump(order)["orderDate"] == text
        assert f'"orderDate":"{text}"'.encode() in common.dump_json(order)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-11-23T14:00:00+02:00", "2026-11-23T12:00:00Z"),
            ("2026-11-23T07:00:00.5-05:00", "2026-11-23T12:00:00.500Z"),
            ("2026-11-23T12:00:00+00:00", "2026-11-23T12:00:00Z"),
            ("2026-11-23T12:00:00.000Z", "2026-11-23T12:00:00Z"),
        ],
    )
    def test_offsets_are_converted_to_utc(self, text: str, expected: str) -> None:
        order = tmf622.ProductOrder.model_validate({**CTK_ORDER, "orderDate": text})
        assert order.order_date is not None and order.order_date.utcoffset() == timedelta(0)
        assert common.dump(order)["orderDate"] == expected

    def test_python_datetimes(self) -> None:
        paris = timezone(timedelta(hours=1))
        item = tmf622.ProductOrderItem(id="1", action=tmf622.OrderItemActionType.add)
        order = tmf622.ProductOrder(
            product_order_item=[item], order_date=datetime(2026, 11, 23, 13, 0, tzinfo=paris)
        )
        assert order.order_date == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        assert common.dump(order)["orderDate"] == "2026-11-23T12:00:00Z"
        with pytest.raises(ValidationError):
            tmf622.ProductOrder(product_order_item=[item], order_date=datetime(2026, 11, 23, 13, 0))

    def test_format_datetime(self) -> None:
        assert (
            common.format_datetime(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
            == "2026-01-02T03:04:05.006Z"
        )
        assert (
            common.format_datetime(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
            == "2026-01-02T03:04:05.000006Z"
        )
        with pytest.raises(ValueError, match="naive"):
            common.format_datetime(datetime(2026, 1, 2))


class TestStateEnums:
    def test_values_come_from_the_specs(self) -> None:
        assert [s.value for s in tmf622.ProductOrderStateType] == [
            "acknowledged", "rejected", "pending", "held", "inProgress", "cancelled",
            "completed", "failed", "partial", "assessingCancellation", "pendingCancellation",
        ]  # fmt: skip
        assert "partial" not in {s.value for s in tmf622.ProductOrderItemStateType}
        assert {s.value for s in tmf622.TaskStateType} == {
            "acknowledged",
            "terminatedWithError",
            "inProgress",
            "done",
        }
        assert tmf622.CancelProductOrderStateType is tmf622.TaskStateType
        assert {s.value for s in tmf678.CustomerBillStateType} == {
            "new", "onHold", "validated", "sent", "partiallyPaid", "settled",
        }  # fmt: skip
        assert {s.value for s in tmf678.CustomerBillOnDemandStateType} == {
            "inProgress", "rejected", "done", "terminatedWithError",
        }  # fmt: skip
        assert {s.value for s in tmf621.TroubleTicketStatusType} == {
            "acknowledged", "rejected", "pending", "held", "inProgress", "cancelled", "closed", "resolved",
        }  # fmt: skip
        for enum in (tmf676.PaymentStatusType, tmf676.RefundStatusType):
            assert {s.value for s in enum} == {
                "pendingAuthorization", "authorized", "captured", "failed", "canceled", "denied", "done",
            }  # fmt: skip

    def test_shared_types_are_one_class(self) -> None:
        assert tmf622.Money is tmf678.Money is tmf676.Money is common.Money
        assert tmf622.RelatedParty is tmf621.RelatedParty is tmf676.RelatedParty is common.RelatedParty
        assert tmf622.Error is tmf678.Error is tmf621.Error is tmf676.Error is common.Error
        assert tmf622.Note is common.Note
        # TMF621's Note has an optional text, so it keeps its own class.
        assert tmf621.Note is not common.Note
        assert tmf621.Note.model_validate({"author": "x"}).text is None
