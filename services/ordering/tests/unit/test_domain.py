"""Pure ordering rules: states, capture validation, notes, pricing. No DB, no mocks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ordering.catalog import Catalog, CatalogError, CharacteristicSpec, UnknownOffering
from ordering.pricing import price_order
from ordering.states import (
    ALLOWED_CANCEL_TRANSITIONS,
    ALLOWED_ITEM_TRANSITIONS,
    ALLOWED_TRANSITIONS,
    TERMINAL_ITEM_STATES,
    TERMINAL_ORDER_STATES,
    WAITING_ON_CUSTOMER_STATES,
    CancelState,
    InvalidTransition,
    ItemState,
    OrderState,
    can_cancel,
    derive_order_state,
    information_required,
    transition,
)
from ordering.validation import (
    NOTE_AUTHOR,
    Problem,
    ProblemCode,
    apply_rejection,
    characteristic_value_error,
    problems_to_notes,
    validate_order,
)
from switchboard_kit.errors import Conflict

# ------------------------------------------------------------------------ factories


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def customer(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "CUST-1001",
        "name": "Ada Lovelace",
        "role": "customer",
        "@referredType": "Individual",
    } | overrides


def gb_address(**overrides: Any) -> dict[str, Any]:
    return {
        "role": "installationAddress",
        "@type": "GeographicAddress",
        "streetNr": "10",
        "streetName": "Downing Street",
        "city": "London",
        "postcode": "SW1A 2AA",
        "country": "GB",
    } | overrides


def characteristic(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "valueType": "string", "value": value}


def offering_ref(offering_id: str) -> dict[str, Any]:
    return {"id": offering_id, "@referredType": "ProductOffering"}


def fibre_item(item_id: str = "1", **overrides: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "action": "add",
        "quantity": 1,
        "productOffering": offering_ref("PO-FIBRE-500"),
        "product": {
            "@type": "Product",
            "productCharacteristic": [characteristic("downloadSpeed", "500Mbps")],
            "place": [gb_address()],
        },
        "@type": "ProductOrderItem",
    } | overrides


def router_item(item_id: str = "2", **overrides: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "action": "add",
        "quantity": 1,
        "productOffering": offering_ref("PO-ROUTER-WIFI6"),
        "productOrderItemRelationship": [{"id": "1", "relationshipType": "reliesOn"}],
        "@type": "ProductOrderItem",
    } | overrides


def sim_item(item_id: str = "1", **overrides: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "action": "add",
        "productOffering": offering_ref("PO-MOBILE-SIMO-20GB"),
        "product": {"productCharacteristic": [characteristic("simType", "eSIM")]},
    } | overrides


def tv_item(item_id: str = "3", **overrides: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "action": "add",
        "productOffering": offering_ref("PO-TV-ADDON"),
        "product": {"productCharacteristic": [characteristic("channelPack", "sport")]},
    } | overrides


def existing_item(action: str, item_id: str = "1", **overrides: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "action": action,
        "productOffering": offering_ref("PO-FIBRE-500"),
        "product": {"id": "PROD-77", "@referredType": "Product"},
    } | overrides


def order(*items: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "@type": "ProductOrder",
        "externalId": "WEB-2026-000123",
        "relatedParty": [customer()],
        "billingAccount": {"id": "BA-5001", "@referredType": "BillingAccount"},
        "productOrderItem": list(items),
    } | overrides


def broadband_order() -> dict[str, Any]:
    """Fibre 500 plus a router, installed in London, for a known customer with a billing account."""
    return order(fibre_item("1"), router_item("2"))


def codes(problems: list[Problem]) -> list[ProblemCode]:
    return [p.code for p in problems]


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def money(value: float, unit: str = "EUR") -> dict[str, Any]:
    return {"unit": unit, "value": value}


# ------------------------------------------------------------------- state machine


class TestTransition:
    @pytest.mark.parametrize(
        ("current", "target"),
        [
            (OrderState.ACKNOWLEDGED, OrderState.IN_PROGRESS),
            (OrderState.ACKNOWLEDGED, OrderState.REJECTED),
            (OrderState.ACKNOWLEDGED, OrderState.CANCELLED),
            (OrderState.IN_PROGRESS, OrderState.COMPLETED),
            (OrderState.IN_PROGRESS, OrderState.PARTIAL),
            (OrderState.IN_PROGRESS, OrderState.PENDING),
            (OrderState.PENDING, OrderState.IN_PROGRESS),
            (OrderState.HELD, OrderState.FAILED),
            (OrderState.ASSESSING_CANCELLATION, OrderState.PENDING_CANCELLATION),
            (OrderState.ASSESSING_CANCELLATION, OrderState.IN_PROGRESS),
            (OrderState.PENDING_CANCELLATION, OrderState.CANCELLED),
        ],
    )
    def test_allowed_order_move(self, current: OrderState, target: OrderState) -> None:
        assert transition(current, target) is target

    @pytest.mark.parametrize(
        ("current", "target"),
        [
            (OrderState.COMPLETED, OrderState.IN_PROGRESS),
            (OrderState.CANCELLED, OrderState.ACKNOWLEDGED),
            (OrderState.IN_PROGRESS, OrderState.ACKNOWLEDGED),
            (OrderState.IN_PROGRESS, OrderState.REJECTED),
            (OrderState.IN_PROGRESS, OrderState.CANCELLED),
            (OrderState.PENDING_CANCELLATION, OrderState.IN_PROGRESS),
            (OrderState.ACKNOWLEDGED, OrderState.COMPLETED),
        ],
    )
    def test_illegal_order_move_raises(self, current: OrderState, target: OrderState) -> None:
        with pytest.raises(InvalidTransition) as exc_info:
            transition(current, target)

        assert exc_info.value.current is current
        assert exc_info.value.target is target

    def test_same_state_is_a_no_op(self) -> None:
        assert transition(OrderState.COMPLETED, OrderState.COMPLETED) is OrderState.COMPLETED

    def test_item_move(self) -> None:
        assert transition(ItemState.IN_PROGRESS, ItemState.COMPLETED) is ItemState.COMPLETED

    def test_illegal_item_move_raises(self) -> None:
        with pytest.raises(InvalidTransition):
            transition(ItemState.FAILED, ItemState.IN_PROGRESS)

    def test_cancel_request_move(self) -> None:
        assert transition(CancelState.IN_PROGRESS, CancelState.DONE) is CancelState.DONE

    def test_illegal_cancel_request_move_raises(self) -> None:
        with pytest.raises(InvalidTransition):
            transition(CancelState.DONE, CancelState.IN_PROGRESS)

    def test_mixing_state_kinds_is_a_type_error(self) -> None:
        with pytest.raises(TypeError):
            transition(OrderState.ACKNOWLEDGED, ItemState.IN_PROGRESS)  # type: ignore[type-var]


class TestInvalidTransition:
    def test_is_a_409_conflict(self) -> None:
        error = InvalidTransition(OrderState.IN_PROGRESS, OrderState.ACKNOWLEDGED)

        assert isinstance(error, Conflict)
        assert error.status == 409
        body = error.to_body()
        assert body["reason"] == "Cannot change state from inProgress to acknowledged"
        assert body["message"].startswith("allowed from inProgress: ")
        assert "completed" in body["message"]

    def test_final_state_message(self) -> None:
        error = InvalidTransition(OrderState.COMPLETED, OrderState.IN_PROGRESS)

        assert error.message == "completed is a final state."


class TestAllowedTransitions:
    def test_every_order_state_has_an_entry(self) -> None:
        assert set(ALLOWED_TRANSITIONS) == set(OrderState)

    def test_every_item_state_has_an_entry(self) -> None:
        assert set(ALLOWED_ITEM_TRANSITIONS) == set(ItemState)

    def test_every_cancel_state_has_an_entry(self) -> None:
        assert set(ALLOWED_CANCEL_TRANSITIONS) == set(CancelState)

    def test_terminal_order_states(self) -> None:
        assert {
            OrderState.COMPLETED,
            OrderState.FAILED,
            OrderState.PARTIAL,
            OrderState.REJECTED,
            OrderState.CANCELLED,
        } == TERMINAL_ORDER_STATES

    def test_terminal_item_states(self) -> None:
        assert {
            ItemState.COMPLETED,
            ItemState.FAILED,
            ItemState.REJECTED,
            ItemState.CANCELLED,
        } == TERMINAL_ITEM_STATES

    def test_no_self_loops(self) -> None:
        for state, targets in ALLOWED_TRANSITIONS.items():
            assert state not in targets

    def test_every_non_terminal_state_can_reach_a_terminal_one(self) -> None:
        for start in OrderState:
            seen, frontier = {start}, [start]
            while frontier:
                for nxt in ALLOWED_TRANSITIONS[frontier.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        frontier.append(nxt)
            assert seen & TERMINAL_ORDER_STATES, start

    def test_item_states_mirror_order_states(self) -> None:
        # Items follow the order lifecycle, minus partial (an item is done or not).
        for state, targets in ALLOWED_ITEM_TRANSITIONS.items():
            order_targets = ALLOWED_TRANSITIONS[OrderState(state.value)] - {OrderState.PARTIAL}
            assert {t.value for t in targets} == {t.value for t in order_targets}, state

    def test_wire_values_match_tmf622_v4(self) -> None:
        assert [s.value for s in OrderState] == [
            "acknowledged",
            "rejected",
            "pending",
            "held",
            "inProgress",
            "cancelled",
            "completed",
            "failed",
            "partial",
            "assessingCancellation",
            "pendingCancellation",
        ]
        assert {s.value for s in ItemState} == {s.value for s in OrderState} - {"partial"}
        assert {s.value for s in CancelState} == {"acknowledged", "inProgress", "done", "terminatedWithError"}


class TestDeriveOrderState:
    C, F, X, R = ItemState.COMPLETED, ItemState.FAILED, ItemState.CANCELLED, ItemState.REJECTED
    A, P, H, W = ItemState.ACKNOWLEDGED, ItemState.IN_PROGRESS, ItemState.HELD, ItemState.PENDING

    def test_all_completed(self) -> None:
        assert derive_order_state([self.C, self.C]) is OrderState.COMPLETED

    def test_all_failed(self) -> None:
        assert derive_order_state([self.F, self.F]) is OrderState.FAILED

    def test_failed_and_cancelled_is_failed(self) -> None:
        assert derive_order_state([self.F, self.X]) is OrderState.FAILED

    def test_all_cancelled_is_failed(self) -> None:
        # Order cancellation has its own flow; items cancelled on their own deliver nothing.
        assert derive_order_state([self.X]) is OrderState.FAILED

    def test_all_rejected(self) -> None:
        assert derive_order_state([self.R, self.R]) is OrderState.REJECTED

    def test_completed_and_failed_is_partial(self) -> None:
        assert derive_order_state([self.C, self.F]) is OrderState.PARTIAL

    def test_completed_and_cancelled_is_partial(self) -> None:
        assert derive_order_state([self.C, self.X]) is OrderState.PARTIAL

    def test_any_in_progress_wins_over_held(self) -> None:
        assert derive_order_state([self.P, self.H, self.C]) is OrderState.IN_PROGRESS

    def test_held_when_nothing_in_progress(self) -> None:
        assert derive_order_state([self.H, self.W, self.C]) is OrderState.HELD

    def test_pending_when_only_waiting_on_customer(self) -> None:
        assert derive_order_state([self.W, self.C]) is OrderState.PENDING

    def test_all_acknowledged(self) -> None:
        assert derive_order_state([self.A, self.A]) is OrderState.ACKNOWLEDGED

    def test_started_but_not_finished_is_in_progress(self) -> None:
        assert derive_order_state([self.A, self.C]) is OrderState.IN_PROGRESS

    def test_failed_item_with_unfinished_one_is_in_progress(self) -> None:
        assert derive_order_state([self.A, self.F]) is OrderState.IN_PROGRESS

    def test_no_items_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="at least one item"):
            derive_order_state([])

    def test_derived_state_is_reachable_from_in_progress(self) -> None:
        # The service applies the derived state with transition(inProgress, derived);
        # for items that have actually been worked on, that must never raise.
        worked = [self.P, self.H, self.W, self.C, self.F, self.X]
        for first in worked:
            for second in [*worked, self.A]:
                derived = derive_order_state([first, second])
                transition(OrderState.IN_PROGRESS, derived)


class TestCanCancel:
    @pytest.mark.parametrize(
        "state", [OrderState.ACKNOWLEDGED, OrderState.IN_PROGRESS, OrderState.PENDING, OrderState.HELD]
    )
    def test_cancellable(self, state: OrderState) -> None:
        assert can_cancel(state) is None

    @pytest.mark.parametrize(
        "state",
        [
            OrderState.COMPLETED,
            OrderState.FAILED,
            OrderState.PARTIAL,
            OrderState.REJECTED,
            OrderState.CANCELLED,
        ],
    )
    def test_final_states(self, state: OrderState) -> None:
        reason = can_cancel(state)

        assert reason == f"Order is {state}; a final order cannot be cancelled."

    @pytest.mark.parametrize("state", [OrderState.ASSESSING_CANCELLATION, OrderState.PENDING_CANCELLATION])
    def test_already_cancelling(self, state: OrderState) -> None:
        reason = can_cancel(state)

        assert reason is not None
        assert "already under way" in reason

    def test_agrees_with_the_state_machine(self) -> None:
        for state in OrderState:
            can_start = OrderState.ASSESSING_CANCELLATION in ALLOWED_TRANSITIONS[state]
            assert (can_cancel(state) is None) == can_start, state


class TestInformationRequired:
    def test_pending_order(self) -> None:
        assert information_required({"state": "pending", "productOrderItem": []})

    def test_pending_item_in_a_running_order(self) -> None:
        running = {"state": "inProgress", "productOrderItem": [{"state": "inProgress"}, {"state": "pending"}]}

        assert information_required(running)

    def test_held_is_the_providers_problem(self) -> None:
        assert not information_required({"state": "held", "productOrderItem": [{"state": "held"}]})

    def test_no_state_yet(self) -> None:
        assert not information_required(broadband_order())

    def test_waiting_states(self) -> None:
        assert frozenset({OrderState.PENDING}) == WAITING_ON_CUSTOMER_STATES


# ---------------------------------------------------------------------- validation


class TestValidateOrder:
    def test_realistic_broadband_order_is_valid(self, catalog: Catalog) -> None:
        assert validate_order(broadband_order(), catalog) == []

    def test_order_with_many_problems_lists_every_one(self, catalog: Catalog) -> None:
        bad = {
            "relatedParty": [{"id": "SHOP-9", "role": "seller", "@referredType": "Organization"}],
            "productOrderItem": [
                fibre_item(
                    "1",
                    product={
                        "productCharacteristic": [characteristic("colour", "red")],
                        "place": [gb_address(postcode="SW1A2AA")],
                    },
                ),
                router_item("1", quantity=0, productOrderItemRelationship=[{"id": "9"}]),
                {"id": "3", "action": "add", "productOffering": offering_ref("PO-SATELLITE")},
                existing_item("delete", "4", product={}),
            ],
        }

        problems = validate_order(bad, catalog)

        assert {(p.code, p.item_id, p.field) for p in problems} == {
            (ProblemCode.MISSING_CUSTOMER, None, "relatedParty"),
            (ProblemCode.DUPLICATE_ITEM_ID, "1", "productOrderItem[1].id"),
            (
                ProblemCode.UNKNOWN_CHARACTERISTIC,
                "1",
                "productOrderItem[0].product.productCharacteristic[0].name",
            ),
            (ProblemCode.MISSING_CHARACTERISTIC, "1", "productOrderItem[0].product.productCharacteristic"),
            (ProblemCode.INVALID_POSTCODE, "1", "productOrderItem[0].product.place[0].postcode"),
            (ProblemCode.MISSING_BILLING_ACCOUNT, "1", "productOrderItem[0].billingAccount"),
            (ProblemCode.INVALID_QUANTITY, "1", "productOrderItem[1].quantity"),
            (
                ProblemCode.INVALID_ITEM_RELATIONSHIP,
                "1",
                "productOrderItem[1].productOrderItemRelationship[0].id",
            ),
            (ProblemCode.UNKNOWN_PRODUCT_OFFERING, "3", "productOrderItem[2].productOffering.id"),
            (ProblemCode.MISSING_PRODUCT_REF, "4", "productOrderItem[3].product.id"),
        }
        assert len(problems) == 10

    def test_problems_are_in_order_of_the_document(self, catalog: Catalog) -> None:
        bad = order(sim_item("1", quantity=0), sim_item("2", quantity=-1), relatedParty=[])

        problems = validate_order(bad, catalog)

        assert [(p.code, p.item_id) for p in problems] == [
            (ProblemCode.MISSING_CUSTOMER, None),
            (ProblemCode.INVALID_QUANTITY, "1"),
            (ProblemCode.INVALID_QUANTITY, "2"),
        ]

    # customer

    def test_missing_related_party(self, catalog: Catalog) -> None:
        bad = broadband_order()
        del bad["relatedParty"]

        assert only(validate_order(bad, catalog)).code is ProblemCode.MISSING_CUSTOMER

    def test_customer_role_is_case_insensitive(self, catalog: Catalog) -> None:
        assert validate_order(order(sim_item(), relatedParty=[customer(role="Customer")]), catalog) == []

    def test_party_without_role_counts_when_individual(self, catalog: Catalog) -> None:
        party = {"id": "CUST-1", "@referredType": "Individual"}

        assert validate_order(order(sim_item(), relatedParty=[party]), catalog) == []

    def test_party_without_role_or_person_type_does_not_count(self, catalog: Catalog) -> None:
        party = {"id": "CH-1", "@referredType": "Channel"}

        problem = only(validate_order(order(sim_item(), relatedParty=[party]), catalog))

        assert problem.code is ProblemCode.MISSING_CUSTOMER

    def test_customer_without_id(self, catalog: Catalog) -> None:
        party = customer()
        del party["id"]

        problem = only(validate_order(order(sim_item(), relatedParty=[party]), catalog))

        assert (problem.code, problem.field) == (ProblemCode.MISSING_CUSTOMER, "relatedParty[0].id")

    def test_known_customer(self, catalog: Catalog) -> None:
        assert validate_order(broadband_order(), catalog, known_customer={"CUST-1001"}.__contains__) == []

    def test_unknown_customer(self, catalog: Catalog) -> None:
        problem = only(validate_order(broadband_order(), catalog, known_customer=lambda _id: False))

        assert problem.code is ProblemCode.UNKNOWN_CUSTOMER
        assert problem.field == "relatedParty[0].id"
        assert "CUST-1001" in problem.message

    # items, ids, actions, quantities

    def test_no_items(self, catalog: Catalog) -> None:
        assert codes(validate_order(order(), catalog)) == [ProblemCode.MISSING_ITEMS]

    def test_item_without_id(self, catalog: Catalog) -> None:
        item = sim_item()
        del item["id"]

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.MISSING_ITEM_ID
        assert problem.item_id is None
        assert problem.field == "productOrderItem[0].id"

    def test_duplicate_item_id_reported_per_extra_copy(self, catalog: Catalog) -> None:
        problems = validate_order(order(sim_item("1"), sim_item("1"), sim_item("1")), catalog)

        assert [p.field for p in problems] == ["productOrderItem[1].id", "productOrderItem[2].id"]
        assert set(codes(problems)) == {ProblemCode.DUPLICATE_ITEM_ID}

    def test_unknown_action(self, catalog: Catalog) -> None:
        problem = only(validate_order(order(sim_item(action="upgrade")), catalog))

        assert (problem.code, problem.field) == (ProblemCode.INVALID_ACTION, "productOrderItem[0].action")

    @pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True])
    def test_invalid_quantity(self, catalog: Catalog, quantity: Any) -> None:
        problem = only(validate_order(order(sim_item(quantity=quantity)), catalog))

        assert problem.code is ProblemCode.INVALID_QUANTITY

    def test_quantity_defaults_to_one(self, catalog: Catalog) -> None:
        item = sim_item()
        item.pop("quantity", None)

        assert validate_order(order(item), catalog) == []

    # offerings

    def test_missing_product_offering(self, catalog: Catalog) -> None:
        item = sim_item()
        del item["productOffering"]

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.MISSING_PRODUCT_OFFERING

    def test_unknown_product_offering_names_the_catalogue_version(self, catalog: Catalog) -> None:
        problem = only(validate_order(order(sim_item(productOffering=offering_ref("PO-X"))), catalog))

        assert problem.code is ProblemCode.UNKNOWN_PRODUCT_OFFERING
        assert "2026.11.1" in problem.message

    def test_retired_offering_cannot_be_added(self, catalog: Catalog) -> None:
        item = fibre_item(productOffering=offering_ref("PO-ADSL-20"))
        item["product"]["productCharacteristic"] = [characteristic("downloadSpeed", "20Mbps")]

        problems = validate_order(order(item), catalog)

        assert codes(problems) == [ProblemCode.OFFERING_NOT_ORDERABLE, ProblemCode.ACTION_NOT_ALLOWED]

    def test_retired_offering_can_still_be_ceased(self, catalog: Catalog) -> None:
        item = existing_item("delete", productOffering=offering_ref("PO-ADSL-20"))

        assert validate_order(order(item), catalog) == []

    def test_action_not_allowed_for_offering(self, catalog: Catalog) -> None:
        item = existing_item("modify", productOffering=offering_ref("PO-ROUTER-WIFI6"))

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.ACTION_NOT_ALLOWED
        assert "add, noChange" in problem.message

    @pytest.mark.parametrize("action", ["modify", "delete", "noChange"])
    def test_existing_product_actions_need_product_id(self, catalog: Catalog, action: str) -> None:
        item = existing_item(action, product={})

        problem = only(validate_order(order(item), catalog))

        assert (problem.code, problem.field) == (
            ProblemCode.MISSING_PRODUCT_REF,
            "productOrderItem[0].product.id",
        )

    @pytest.mark.parametrize("action", ["modify", "delete", "noChange"])
    def test_existing_product_actions_are_valid_with_product_id(self, catalog: Catalog, action: str) -> None:
        assert validate_order(order(existing_item(action)), catalog) == []

    # characteristics

    def test_missing_required_characteristic_lists_choices(self, catalog: Catalog) -> None:
        item = fibre_item()
        item["product"]["productCharacteristic"] = []

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.MISSING_CHARACTERISTIC
        assert "'downloadSpeed' (one of 500Mbps, 300Mbps, 100Mbps)" in problem.message

    def test_value_not_in_allowed_list(self, catalog: Catalog) -> None:
        item = fibre_item()
        item["product"]["productCharacteristic"] = [characteristic("downloadSpeed", "1000Mbps")]

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.INVALID_CHARACTERISTIC_VALUE
        assert problem.field == "productOrderItem[0].product.productCharacteristic[0].value"

    def test_port_in_number_must_be_e164(self, catalog: Catalog) -> None:
        item = sim_item()
        item["product"]["productCharacteristic"].append(characteristic("portInMsisdn", "07700 900123"))

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.INVALID_CHARACTERISTIC_VALUE
        assert "invalid format" in problem.message

    def test_port_in_number_in_e164_is_valid(self, catalog: Catalog) -> None:
        item = sim_item()
        item["product"]["productCharacteristic"].append(characteristic("portInMsisdn", "+447700900123"))

        assert validate_order(order(item), catalog) == []

    def test_duplicate_characteristic(self, catalog: Catalog) -> None:
        item = sim_item()
        item["product"]["productCharacteristic"].append(characteristic("simType", "physical"))

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.DUPLICATE_CHARACTERISTIC

    def test_modify_checks_given_values_but_requires_none(self, catalog: Catalog) -> None:
        fine = existing_item("modify")
        bad = existing_item("modify", "2")
        bad["product"]["productCharacteristic"] = [characteristic("downloadSpeed", "10Gbps")]

        problems = validate_order(order(fine, bad), catalog)

        assert [(p.code, p.item_id) for p in problems] == [(ProblemCode.INVALID_CHARACTERISTIC_VALUE, "2")]

    def test_delete_ignores_characteristics(self, catalog: Catalog) -> None:
        item = existing_item("delete")
        item["product"]["productCharacteristic"] = [characteristic("nonsense", 1)]

        assert validate_order(order(item), catalog) == []

    # installation place

    def test_missing_installation_place(self, catalog: Catalog) -> None:
        item = fibre_item()
        item["product"]["place"] = [gb_address(role="billingAddress")]

        problem = only(validate_order(order(item), catalog))

        assert (problem.code, problem.field) == (
            ProblemCode.MISSING_PLACE,
            "productOrderItem[0].product.place",
        )

    def test_place_reference_by_id_is_accepted(self, catalog: Catalog) -> None:
        item = fibre_item()
        item["product"]["place"] = [
            {"id": "ADDR-42", "role": "installationAddress", "@referredType": "GeographicAddress"}
        ]

        assert validate_order(order(item), catalog) == []

    def test_place_without_id_or_address(self, catalog: Catalog) -> None:
        item = fibre_item()
        item["product"]["place"] = [{"role": "installationAddress"}]

        assert only(validate_order(order(item), catalog)).code is ProblemCode.INVALID_PLACE

    def test_two_installation_places(self, catalog: Catalog) -> None:
        item = fibre_item()
        item["product"]["place"] = [gb_address(), gb_address()]

        problem = only(validate_order(order(item), catalog))

        assert (problem.code, problem.field) == (
            ProblemCode.INVALID_PLACE,
            "productOrderItem[0].product.place[1]",
        )

    def test_address_without_country(self, catalog: Catalog) -> None:
        item = fibre_item()
        del item["product"]["place"][0]["country"]

        problem = only(validate_order(order(item), catalog))

        assert (problem.code, problem.field) == (
            ProblemCode.INVALID_PLACE,
            "productOrderItem[0].product.place[0].country",
        )

    def test_address_without_postcode(self, catalog: Catalog) -> None:
        item = fibre_item()
        del item["product"]["place"][0]["postcode"]

        problem = only(validate_order(order(item), catalog))

        assert (problem.code, problem.field) == (
            ProblemCode.INVALID_PLACE,
            "productOrderItem[0].product.place[0].postcode",
        )

    def test_unserved_country(self, catalog: Catalog) -> None:
        item = fibre_item()
        item["product"]["place"] = [gb_address(country="BE", postcode="1000")]

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.UNSUPPORTED_COUNTRY
        assert "DE, FR, GB, NL, US" in problem.message

    @pytest.mark.parametrize(
        ("country", "postcode"),
        [("GB", "sw1a 2aa"), ("NL", "1012 AB"), ("DE", "10115"), ("FR", "75008"), ("US", "10001-0001")],
    )
    def test_valid_postcode_per_country(self, catalog: Catalog, country: str, postcode: str) -> None:
        item = fibre_item()
        item["product"]["place"] = [gb_address(country=country, postcode=postcode)]

        assert validate_order(order(item), catalog) == []

    @pytest.mark.parametrize(
        ("country", "postcode"),
        [("GB", "12345"), ("NL", "1012AB"), ("DE", "1011"), ("FR", "7500A"), ("US", "1000")],
    )
    def test_invalid_postcode_per_country(self, catalog: Catalog, country: str, postcode: str) -> None:
        item = fibre_item()
        item["product"]["place"] = [gb_address(country=country, postcode=postcode)]

        problem = only(validate_order(order(item), catalog))

        assert problem.code is ProblemCode.INVALID_POSTCODE
        assert problem.message == f"{postcode!r} is not a valid postcode for {country}."

    def test_place_not_needed_for_sim(self, catalog: Catalog) -> None:
        assert validate_order(order(sim_item()), catalog) == []

    # billing account

    def test_recurring_charge_needs_billing_account(self, catalog: Catalog) -> None:
        bad = broadband_order()
        del bad["billingAccount"]

        problem = only(validate_order(bad, catalog))

        assert problem.code is ProblemCode.MISSING_BILLING_ACCOUNT
        assert problem.item_id == "1"  # the router is one-off, so only the fibre needs one

    def test_item_level_billing_account_is_enough(self, catalog: Catalog) -> None:
        bad = order(sim_item(billingAccount={"id": "BA-9"}))
        del bad["billingAccount"]

        assert validate_order(bad, catalog) == []

    def test_one_off_purchase_needs_no_billing_account(self, catalog: Catalog) -> None:
        router_only = order(router_item(productOrderItemRelationship=[]))
        del router_only["billingAccount"]

        assert validate_order(router_only, catalog) == []

    # add-on prerequisites

    def test_tv_with_fibre_in_the_same_order(self, catalog: Catalog) -> None:
        assert validate_order(order(fibre_item("1"), tv_item("3")), catalog) == []

    def test_tv_alone(self, catalog: Catalog) -> None:
        problem = only(validate_order(order(tv_item()), catalog))

        assert problem.code is ProblemCode.MISSING_REQUIRED_PRODUCT

    def test_tv_with_fibre_being_ceased(self, catalog: Catalog) -> None:
        problems = validate_order(order(existing_item("delete", "1"), tv_item("3")), catalog)

        assert codes(problems) == [ProblemCode.MISSING_REQUIRED_PRODUCT]

    def test_tv_relying_on_an_installed_fibre_product(self, catalog: Catalog) -> None:
        item = tv_item()
        item["product"]["productRelationship"] = [
            {"relationshipType": "reliesOn", "product": {"id": "PROD-77"}}
        ]

        assert validate_order(order(item), catalog) == []

    # item relationships

    def test_item_relating_to_itself(self, catalog: Catalog) -> None:
        bad = order(sim_item("1", productOrderItemRelationship=[{"id": "1", "relationshipType": "reliesOn"}]))

        problem = only(validate_order(bad, catalog))

        assert problem.code is ProblemCode.INVALID_ITEM_RELATIONSHIP
        assert "itself" in problem.message

    def test_relationship_without_id(self, catalog: Catalog) -> None:
        bad = order(sim_item("1", productOrderItemRelationship=[{"relationshipType": "reliesOn"}]))

        assert only(validate_order(bad, catalog)).code is ProblemCode.INVALID_ITEM_RELATIONSHIP

    # robustness

    def test_does_not_modify_the_order(self, catalog: Catalog) -> None:
        submitted = broadband_order()
        before = copy.deepcopy(submitted)

        validate_order(submitted, catalog)

        assert submitted == before

    def test_junk_items_are_reported_not_crashed_on(self, catalog: Catalog) -> None:
        problems = validate_order(order("not an item"), catalog)  # type: ignore[arg-type]

        assert codes(problems) == [
            ProblemCode.MISSING_ITEM_ID,
            ProblemCode.INVALID_ACTION,
            ProblemCode.MISSING_PRODUCT_OFFERING,
        ]


class TestCharacteristicValueError:
    def spec(self, value_type: Any, **kwargs: Any) -> CharacteristicSpec:
        return CharacteristicSpec(name="x", required=True, value_type=value_type, **kwargs)

    @pytest.mark.parametrize("value", [True, False, "true", "false"])
    def test_boolean_ok(self, value: Any) -> None:
        assert characteristic_value_error(self.spec("boolean"), value) is None

    @pytest.mark.parametrize("value", ["yes", 1, "True"])
    def test_boolean_bad(self, value: Any) -> None:
        assert characteristic_value_error(self.spec("boolean"), value) is not None

    @pytest.mark.parametrize("value", [1, 4, "2"])
    def test_integer_in_range(self, value: Any) -> None:
        assert characteristic_value_error(self.spec("integer", minimum=1, maximum=4), value) is None

    @pytest.mark.parametrize("value", [0, 5, "2.5", 2.5, True, "two"])
    def test_integer_bad(self, value: Any) -> None:
        assert characteristic_value_error(self.spec("integer", minimum=1, maximum=4), value) is not None

    @pytest.mark.parametrize("value", [1, 2.5, "2.5"])
    def test_number_ok(self, value: Any) -> None:
        assert characteristic_value_error(self.spec("number"), value) is None

    @pytest.mark.parametrize("value", ["NaN", "abc", [1]])
    def test_number_bad(self, value: Any) -> None:
        assert characteristic_value_error(self.spec("number"), value) is not None

    def test_string_must_be_a_string(self) -> None:
        assert (
            characteristic_value_error(self.spec("string"), 5)
            == "Characteristic 'x' must be a string; got 5."
        )

    def test_missing_value(self) -> None:
        assert characteristic_value_error(self.spec("string"), None) == "Characteristic 'x' has no value."


class TestProblemsToNotes:
    def test_item_problem(self) -> None:
        problem = Problem(
            ProblemCode.INVALID_POSTCODE,
            "'X' is not a valid postcode for GB.",
            "1",
            "productOrderItem[0].product.place[0].postcode",
        )

        assert problems_to_notes([problem]) == [
            {
                "@type": "Note",
                "id": "validation-1",
                "author": "Switchboard order validation",
                "text": "[item 1] 'X' is not a valid postcode for GB. "
                "(invalidPostcode at productOrderItem[0].product.place[0].postcode)",
            }
        ]

    def test_order_problem_without_field(self) -> None:
        note = only_note(problems_to_notes([Problem(ProblemCode.MISSING_ITEMS, "No items.")]))

        assert note["text"] == "[order] No items. (missingItems)"

    def test_numbered_and_dated(self) -> None:
        problems = [Problem(ProblemCode.MISSING_ITEMS, "a"), Problem(ProblemCode.MISSING_CUSTOMER, "b")]

        notes = problems_to_notes(problems, date="2026-11-02T10:00:00Z")

        assert [n["id"] for n in notes] == ["validation-1", "validation-2"]
        assert {n["date"] for n in notes} == {"2026-11-02T10:00:00Z"}

    def test_no_problems_no_notes(self) -> None:
        assert problems_to_notes([]) == []


def only_note(notes: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(notes) == 1
    return notes[0]


class TestApplyRejection:
    def test_rejects_order_and_every_item(self, catalog: Catalog) -> None:
        submitted = broadband_order()
        del submitted["relatedParty"]
        problems = validate_order(submitted, catalog)

        rejected = apply_rejection(submitted, problems)

        assert rejected["state"] == "rejected"
        assert [i["state"] for i in rejected["productOrderItem"]] == ["rejected", "rejected"]
        assert rejected["note"] == problems_to_notes(problems)
        assert "state" not in submitted

    def test_keeps_client_notes_and_replaces_old_validation_notes(self) -> None:
        client_note = {"text": "Please call before arriving", "author": "Ada"}
        old = {"text": "[order] stale", "author": NOTE_AUTHOR}
        submitted = order(sim_item(), note=[client_note, old])

        rejected = apply_rejection(submitted, [Problem(ProblemCode.MISSING_CUSTOMER, "No customer.")])

        assert [n["text"] for n in rejected["note"]] == [
            "Please call before arriving",
            "[order] No customer. (missingCustomer)",
        ]


# ------------------------------------------------------------------------- pricing


class TestPriceOrder:
    def test_broadband_order(self, catalog: Catalog) -> None:
        priced = price_order(broadband_order(), catalog)

        fibre, router = priced["productOrderItem"]
        assert fibre["itemPrice"] == [
            {
                "@type": "OrderPrice",
                "name": "Fibre Broadband 500 monthly fee",
                "priceType": "recurring",
                "recurringChargePeriod": "month",
                "price": {
                    "@type": "Price",
                    "taxIncludedAmount": money(48.40),
                    "dutyFreeAmount": money(40.00),
                    "taxRate": 21.0,
                },
                "productOfferingPrice": {
                    "id": "POP-FIBRE-500-MONTHLY",
                    "name": "Fibre Broadband 500 monthly fee",
                    "@referredType": "ProductOfferingPrice",
                },
            },
            {
                "@type": "OrderPrice",
                "name": "Fibre installation",
                "priceType": "oneTime",
                "price": {
                    "@type": "Price",
                    "taxIncludedAmount": money(60.50),
                    "dutyFreeAmount": money(50.00),
                    "taxRate": 21.0,
                },
                "productOfferingPrice": {
                    "id": "POP-FIBRE-500-INSTALL",
                    "name": "Fibre installation",
                    "@referredType": "ProductOfferingPrice",
                },
            },
        ]
        assert [p["price"]["taxIncludedAmount"] for p in router["itemPrice"]] == [money(145.20)]
        assert priced["orderTotalPrice"] == [
            {
                "@type": "OrderPrice",
                "name": "Total recurring charges per month",
                "priceType": "recurring",
                "recurringChargePeriod": "month",
                "price": {
                    "@type": "Price",
                    "taxIncludedAmount": money(48.40),
                    "dutyFreeAmount": money(40.00),
                    "taxRate": 21.0,
                },
            },
            {
                "@type": "OrderPrice",
                "name": "Total one-time charges",
                "priceType": "oneTime",
                "price": {
                    "@type": "Price",
                    "taxIncludedAmount": money(205.70),
                    "dutyFreeAmount": money(170.00),
                    "taxRate": 21.0,
                },
            },
        ]

    def test_does_not_modify_the_input(self, catalog: Catalog) -> None:
        submitted = broadband_order()
        before = copy.deepcopy(submitted)

        price_order(submitted, catalog)

        assert submitted == before

    def test_every_order_gets_its_own_copy_of_cached_prices(self) -> None:
        catalog = Catalog.load()  # a fresh catalogue: an empty price cache
        first = price_order(broadband_order(), catalog)
        first["productOrderItem"][0]["itemPrice"][0]["name"] = "changed"
        first["orderTotalPrice"][0]["price"]["taxIncludedAmount"]["value"] = -1
        second = price_order(broadband_order(), catalog)
        assert catalog.computed  # the second order was priced from the cache
        assert second["productOrderItem"][0]["itemPrice"][0]["name"] != "changed"
        assert second["orderTotalPrice"][0]["price"]["taxIncludedAmount"]["value"] != -1
        assert second == price_order(broadband_order(), Catalog.load())

    def test_keeps_everything_else(self, catalog: Catalog) -> None:
        priced = price_order(broadband_order(), catalog)

        priced.pop("orderTotalPrice")
        for item in priced["productOrderItem"]:
            item.pop("itemPrice")
        assert priced == broadband_order()

    def test_quantity_multiplies(self, catalog: Catalog) -> None:
        priced = price_order(order(sim_item(quantity=3)), catalog)

        (item_price,) = priced["productOrderItem"][0]["itemPrice"]
        assert item_price["description"] == "3 x 12.1 EUR"
        assert item_price["price"]["taxIncludedAmount"] == money(36.30)
        assert item_price["price"]["dutyFreeAmount"] == money(30.00)
        assert priced["orderTotalPrice"][0]["price"]["taxIncludedAmount"] == money(36.30)

    def test_totals_add_up_across_items(self, catalog: Catalog) -> None:
        priced = price_order(order(fibre_item("1"), tv_item("3"), sim_item("4", quantity=2)), catalog)

        recurring, one_time = priced["orderTotalPrice"]
        # 48.40 + 18.15 + 2 x 12.10
        assert recurring["price"]["taxIncludedAmount"] == money(90.75)
        assert recurring["price"]["dutyFreeAmount"] == money(75.00)
        assert one_time["price"]["taxIncludedAmount"] == money(60.50)

    def test_modify_pays_recurring_only(self, catalog: Catalog) -> None:
        priced = price_order(order(existing_item("modify")), catalog)

        assert [p["priceType"] for p in priced["productOrderItem"][0]["itemPrice"]] == ["recurring"]
        assert [t["priceType"] for t in priced["orderTotalPrice"]] == ["recurring"]

    @pytest.mark.parametrize("action", ["delete", "noChange"])
    def test_delete_and_no_change_are_free(self, catalog: Catalog, action: str) -> None:
        priced = price_order(order(existing_item(action)), catalog)

        assert priced["productOrderItem"][0]["itemPrice"] == []
        assert priced["orderTotalPrice"] == []

    def test_decimal_arithmetic(self) -> None:
        # 0.1 * 3 in floats is 0.30000000000000004.
        catalog = Catalog.from_dict(one_price_catalog(duty_free="0.1", tax_included="0.1", tax_rate=0))

        priced = price_order(order(plain_item(quantity=3)), catalog)

        assert priced["orderTotalPrice"][0]["price"]["taxIncludedAmount"] == money(0.3)

    @pytest.mark.parametrize(
        ("duty_free", "tax_included", "expected_free", "expected_incl"),
        [
            ("10.004", "10.005", 10.00, 10.00),
            ("10.016", "10.015", 10.02, 10.02),
            ("10.0051", "10.025", 10.01, 10.02),
        ],
    )
    def test_rounds_half_even_to_cents(
        self, duty_free: str, tax_included: str, expected_free: float, expected_incl: float
    ) -> None:
        # Half-even, the kit's one rounding rule (switchboard_kit.money): 10.005 -> 10.00, 10.015 -> 10.02.
        catalog = Catalog.from_dict(
            one_price_catalog(duty_free=duty_free, tax_included=tax_included, tax_rate=0)
        )

        (item_price,) = price_order(order(plain_item()), catalog)["productOrderItem"][0]["itemPrice"]

        assert item_price["price"]["taxIncludedAmount"] == money(expected_incl)
        assert item_price["price"]["dutyFreeAmount"] == money(expected_free)

    def test_an_unknown_currency_in_the_catalogue_is_refused(self) -> None:
        data = one_price_catalog(duty_free="10", tax_included="12.1", tax_rate=21)
        for amount in ("taxIncludedAmount", "dutyFreeAmount"):
            data["productOfferings"][0]["prices"][0]["price"][amount]["unit"] = "EURO"
        with pytest.raises(CatalogError, match="ISO 4217"):
            Catalog.from_dict(data)

    def test_total_drops_tax_rate_when_rates_differ(self) -> None:
        data = one_price_catalog(duty_free="10", tax_included="12.1", tax_rate=21)
        second = copy.deepcopy(data["productOfferings"][0])
        second["id"] = "PO-B"
        second["prices"][0] |= {"id": "POP-B"}
        second["prices"][0]["price"] |= {"taxRate": 9, "taxIncludedAmount": {"unit": "EUR", "value": "10.9"}}
        data["productOfferings"].append(second)
        catalog = Catalog.from_dict(data)

        priced = price_order(order(plain_item("1"), plain_item("2", productOffering={"id": "PO-B"})), catalog)

        (total,) = priced["orderTotalPrice"]
        assert "taxRate" not in total["price"]
        assert total["price"]["taxIncludedAmount"] == money(23.0)

    def test_separate_totals_per_currency(self) -> None:
        data = one_price_catalog(duty_free="10", tax_included="10", tax_rate=0)
        second = copy.deepcopy(data["productOfferings"][0])
        second["id"] = "PO-B"
        for amount in ("taxIncludedAmount", "dutyFreeAmount"):
            second["prices"][0]["price"][amount]["unit"] = "GBP"
        data["productOfferings"].append(second)
        catalog = Catalog.from_dict(data)

        priced = price_order(order(plain_item("1"), plain_item("2", productOffering={"id": "PO-B"})), catalog)

        assert [t["price"]["taxIncludedAmount"]["unit"] for t in priced["orderTotalPrice"]] == ["EUR", "GBP"]

    def test_unknown_offering_raises(self, catalog: Catalog) -> None:
        with pytest.raises(UnknownOffering):
            price_order(order(sim_item(productOffering={"id": "PO-X"})), catalog)

    def test_invalid_quantity_raises(self, catalog: Catalog) -> None:
        with pytest.raises(ValueError, match="quantity"):
            price_order(order(sim_item(quantity=0)), catalog)


def one_price_catalog(*, duty_free: str, tax_included: str, tax_rate: int) -> dict[str, Any]:
    return {
        "version": "test",
        "productOfferings": [
            {
                "id": "PO-A",
                "name": "A",
                "version": "1",
                "lifecycleStatus": "Launched",
                "allowedActions": ["add"],
                "prices": [
                    {
                        "id": "POP-A",
                        "name": "A monthly",
                        "priceType": "recurring",
                        "recurringChargePeriod": "month",
                        "price": {
                            "taxIncludedAmount": {"unit": "EUR", "value": tax_included},
                            "dutyFreeAmount": {"unit": "EUR", "value": duty_free},
                            "taxRate": tax_rate,
                        },
                    }
                ],
            }
        ],
    }


def plain_item(item_id: str = "1", **overrides: Any) -> dict[str, Any]:
    return {"id": item_id, "action": "add", "productOffering": {"id": "PO-A"}} | overrides
