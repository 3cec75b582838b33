"""The ordering commands: a document and a command in, the new document and its events out. No DB."""

from __future__ import annotations

from typing import Any

import pytest

from ordering.catalog import Catalog
from ordering.documents import copy_document
from ordering.domain import (
    CommandResult,
    advance_cancellation,
    capture,
    fulfil,
    start_cancellation,
    to_provision,
    update,
)
from ordering.provisioning import ProvisioningResult
from ordering.samples import broadband_order
from ordering.states import ClientTransitionRefused, InvalidTransition
from ordering.validation import CustomerRequired
from switchboard_kit.errors import BadRequest, Conflict

NOW = "2026-12-02T12:00:00.000Z"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def captured(catalog: Catalog) -> dict[str, Any]:
    """An accepted order, as stored after capture (inProgress, items inProgress)."""
    return capture(broadband_order(), catalog, date=NOW).doc


def in_state(order: dict[str, Any], state: str, *item_states: str) -> dict[str, Any]:
    """A stored order put in ``state`` with items in ``item_states`` (as the tests need it, not a transition)."""
    doc = copy_document(order)
    doc.update(state=state)
    for item, item_state in zip(doc["productOrderItem"], item_states, strict=True):
        item.update(state=item_state)
    return doc


def kinds(change: CommandResult) -> list[str]:
    return [event_type for event_type, _ in change.events]


def states_of(doc: dict[str, Any]) -> tuple[str, list[str]]:
    return doc["state"], [item["state"] for item in doc["productOrderItem"]]


def request(order_id: str = "O-1", **extra: Any) -> dict[str, Any]:
    return {"id": "C-1", "productOrder": {"id": order_id}, "@type": "CancelProductOrder", **extra}


class TestCapture:
    def test_a_valid_order_is_priced_and_moves_acknowledged_then_in_progress(self, catalog: Catalog) -> None:
        change = capture(broadband_order(), catalog, date=NOW)

        assert states_of(change.doc) == ("inProgress", ["inProgress", "inProgress"])
        assert "orderTotalPrice" in change.doc
        assert kinds(change) == ["ProductOrderCreateEvent", "ProductOrderStateChangeEvent"]
        created = change.events[0][1]
        assert states_of(created) == ("acknowledged", ["acknowledged", "acknowledged"])
        assert change.events[1][1] is change.doc

    def test_states_a_client_sends_are_ignored(self, catalog: Catalog) -> None:
        body = broadband_order()
        body["state"] = "completed"
        body["productOrderItem"][0]["state"] = "completed"

        change = capture(body, catalog, date=NOW)

        assert states_of(change.doc) == ("inProgress", ["inProgress", "inProgress"])
        assert states_of(change.events[0][1]) == ("acknowledged", ["acknowledged", "acknowledged"])

    def test_an_invalid_order_is_rejected_with_one_create_event(self, catalog: Catalog) -> None:
        body = broadband_order()
        body["productOrderItem"][0]["product"]["place"][0]["postcode"] = "NOT A POSTCODE"

        change = capture(body, catalog, date=NOW)

        assert states_of(change.doc) == ("rejected", ["rejected", "rejected"])
        assert kinds(change) == ["ProductOrderCreateEvent"]
        assert any("invalidPostcode" in note["text"] and note["date"] == NOW for note in change.doc["note"])

    @pytest.mark.parametrize(
        "parties",
        [
            [],
            [{"id": "SHOP-9", "role": "seller", "@referredType": "Organization"}],
            [{"id": "", "role": "customer"}],
        ],
    )
    def test_an_order_naming_no_customer_is_refused(self, catalog: Catalog, parties: list[Any]) -> None:
        body = broadband_order()
        body["relatedParty"] = parties

        with pytest.raises(CustomerRequired) as refused:
            capture(body, catalog, date=NOW)
        assert refused.value.status == 400

    def test_a_person_without_a_role_is_the_customer(self, catalog: Catalog) -> None:
        body = broadband_order()
        body["relatedParty"] = [{"id": "456-dd-df45", "@referredType": "Individual"}]

        assert capture(body, catalog, date=NOW).doc["state"] == "inProgress"


class TestUpdate:
    def test_resuming_a_held_order_retries_its_held_and_pending_items(self, catalog: Catalog) -> None:
        current = in_state(captured(catalog), "held", "held", "pending")
        patched = copy_document(current) | {"state": "inProgress"}

        change = update(current, patched, catalog)

        assert states_of(change.doc) == ("inProgress", ["inProgress", "inProgress"])
        # The items changed too (their states), as before the commands existed.
        assert kinds(change) == ["ProductOrderStateChangeEvent", "ProductOrderAttributeValueChangeEvent"]
        assert states_of(current) == ("held", ["held", "pending"])

    def test_stopping_for_the_customer_asks_for_information(self, catalog: Catalog) -> None:
        current = captured(catalog)

        change = update(current, copy_document(current) | {"state": "pending"}, catalog)

        assert kinds(change) == ["ProductOrderStateChangeEvent", "ProductOrderInformationRequiredEvent"]

    def test_an_attribute_change_is_not_a_state_change(self, catalog: Catalog) -> None:
        current = captured(catalog)

        change = update(current, copy_document(current) | {"description": "new"}, catalog)

        assert kinds(change) == ["ProductOrderAttributeValueChangeEvent"]
        assert change.doc["state"] == "inProgress"

    def test_nothing_changed_has_no_events(self, catalog: Catalog) -> None:
        current = captured(catalog)

        assert update(current, copy_document(current), catalog).events == []

    def test_the_customer_cannot_be_removed(self, catalog: Catalog) -> None:
        current = captured(catalog)

        with pytest.raises(CustomerRequired):
            update(current, copy_document(current) | {"relatedParty": []}, catalog)

    def test_a_client_cannot_complete_an_order(self, catalog: Catalog) -> None:
        current = captured(catalog)

        with pytest.raises(ClientTransitionRefused):
            update(current, copy_document(current) | {"state": "completed"}, catalog)

    def test_a_client_cannot_change_an_item_state(self, catalog: Catalog) -> None:
        current = in_state(captured(catalog), "held", "held", "held")
        patched = copy_document(current)
        patched["productOrderItem"][0].update(state="completed")

        with pytest.raises(Conflict):
            update(current, patched, catalog)

    def test_items_of_a_running_order_are_locked(self, catalog: Catalog) -> None:
        current = captured(catalog)
        patched = copy_document(current)
        patched["productOrderItem"][0]["quantity"] = 2

        with pytest.raises(Conflict, match="locked"):
            update(current, patched, catalog)

    def test_state_cannot_be_removed(self, catalog: Catalog) -> None:
        current = captured(catalog)
        patched = {k: v for k, v in current.items() if k != "state"}

        with pytest.raises(BadRequest):
            update(current, patched, catalog)


class TestStartCancellation:
    def test_accepted_request_moves_the_order_and_its_open_items_to_assessing(self, catalog: Catalog) -> None:
        order = in_state(captured(catalog), "inProgress", "completed", "inProgress")

        cancel, cancelling = start_cancellation(request(), order)

        assert cancel.doc["state"] == "inProgress"
        assert kinds(cancel) == ["CancelProductOrderCreateEvent", "CancelProductOrderStateChangeEvent"]
        assert cancel.events[0][1]["state"] == "acknowledged"
        assert cancelling is not None
        assert states_of(cancelling.doc) == ("assessingCancellation", ["completed", "assessingCancellation"])
        assert kinds(cancelling) == ["ProductOrderStateChangeEvent"]
        assert order["state"] == "inProgress"  # the stored document is not changed

    @pytest.mark.parametrize("state", ["completed", "assessingCancellation"])
    def test_refused_request_ends_terminated_with_its_reason(self, catalog: Catalog, state: str) -> None:
        order = in_state(captured(catalog), state, "completed", "completed")

        cancel, cancelling = start_cancellation(request(), order)

        assert cancelling is None
        assert cancel.doc["state"] == "terminatedWithError"
        assert state in cancel.doc["stateReason"]
        assert kinds(cancel) == ["CancelProductOrderCreateEvent"]

    def test_a_client_state_on_the_request_is_ignored(self, catalog: Catalog) -> None:
        cancel, _ = start_cancellation(request(state="done"), captured(catalog))

        assert cancel.doc["state"] == "inProgress"


class TestAdvanceCancellation:
    def started(self, catalog: Catalog) -> tuple[dict[str, Any], dict[str, Any]]:
        cancel, order = start_cancellation(request(cancellationReason="Moved house"), captured(catalog))
        assert order is not None
        return cancel.doc, order.doc

    def test_assessing_goes_to_pending_cancellation(self, catalog: Catalog) -> None:
        cancel, order = self.started(catalog)

        step, pending = advance_cancellation(cancel, order, now=NOW)

        assert step.doc == cancel and step.events == []
        assert pending is not None
        assert states_of(pending.doc) == ("pendingCancellation", ["pendingCancellation"] * 2)
        assert kinds(pending) == ["ProductOrderStateChangeEvent"]

    def test_pending_cancellation_ends_cancelled_and_the_request_done(self, catalog: Catalog) -> None:
        cancel, order = self.started(catalog)
        _, pending = advance_cancellation(cancel, order, now=NOW)
        assert pending is not None

        done, cancelled = advance_cancellation(cancel, pending.doc, now=NOW)

        assert cancelled is not None
        assert states_of(cancelled.doc) == ("cancelled", ["cancelled", "cancelled"])
        assert cancelled.doc["cancellationDate"] == NOW
        assert cancelled.doc["cancellationReason"] == "Moved house"
        assert (done.doc["state"], done.doc["effectiveCancellationDate"]) == ("done", NOW)
        assert kinds(done) == ["CancelProductOrderStateChangeEvent"]

    def test_a_vanished_order_ends_the_request_with_an_error(self, catalog: Catalog) -> None:
        cancel, _ = self.started(catalog)

        ended, order = advance_cancellation(cancel, None, now=NOW)

        assert order is None
        assert ended.doc["state"] == "terminatedWithError"
        assert kinds(ended) == ["CancelProductOrderStateChangeEvent"]

    def test_an_order_that_left_the_cancellation_ends_the_request_with_an_error(
        self, catalog: Catalog
    ) -> None:
        cancel, _ = self.started(catalog)

        ended, order = advance_cancellation(cancel, captured(catalog), now=NOW)

        assert order is None
        assert ended.doc["state"] == "terminatedWithError"
        assert "inProgress" in ended.doc["stateReason"]

    def test_a_done_request_cannot_end_in_error(self, catalog: Catalog) -> None:
        cancel, _ = self.started(catalog)
        cancel.update(state="done")

        with pytest.raises(InvalidTransition, match="from done to terminatedWithError"):
            advance_cancellation(cancel, None, now=NOW)

    def test_a_request_ended_in_error_cannot_be_done(self, catalog: Catalog) -> None:
        cancel, order = self.started(catalog)
        _, pending = advance_cancellation(cancel, order, now=NOW)
        assert pending is not None
        cancel.update(state="terminatedWithError")

        with pytest.raises(InvalidTransition, match="terminatedWithError to done"):
            advance_cancellation(cancel, pending.doc, now=NOW)


class TestFulfil:
    def test_every_item_completed_completes_the_order(self, catalog: Catalog) -> None:
        order = captured(catalog)
        assert to_provision(order) == [0, 1]

        change = fulfil(
            order, {0: ProvisioningResult("completed"), 1: ProvisioningResult("completed")}, now=NOW
        )

        assert states_of(change.doc) == ("completed", ["completed", "completed"])
        assert change.doc["completionDate"] == NOW
        assert kinds(change) == ["ProductOrderStateChangeEvent"]
        assert order["state"] == "inProgress"

    def test_a_pending_item_in_a_held_order_asks_the_customer(self, catalog: Catalog) -> None:
        results = {
            0: ProvisioningResult("held", "Port capacity exhausted"),
            1: ProvisioningResult("pending", "Customer must confirm"),
        }

        change = fulfil(captured(catalog), results, now=NOW)

        assert states_of(change.doc) == ("held", ["held", "pending"])
        assert kinds(change) == ["ProductOrderStateChangeEvent", "ProductOrderInformationRequiredEvent"]
        assert [n["text"] for n in change.doc["note"][-2:]] == [
            "[item 1] held: Port capacity exhausted",
            "[item 2] pending: Customer must confirm",
        ]
        assert "completionDate" not in change.doc

    def test_an_acknowledged_item_is_started_before_its_outcome(self, catalog: Catalog) -> None:
        order = in_state(captured(catalog), "inProgress", "acknowledged", "completed")
        assert to_provision(order) == [0]

        change = fulfil(order, {0: ProvisioningResult("completed")}, now=NOW)

        assert states_of(change.doc) == ("completed", ["completed", "completed"])

    def test_an_order_that_is_not_in_progress_is_left_alone(self, catalog: Catalog) -> None:
        order = in_state(captured(catalog), "held", "held", "held")
        assert to_provision(order) == []

        change = fulfil(order, {}, now=NOW)

        assert change.doc == order and change.events == []

    def test_a_derived_state_the_table_forbids_raises(self, catalog: Catalog) -> None:
        order = in_state(captured(catalog), "inProgress", "rejected", "rejected")

        with pytest.raises(InvalidTransition):
            fulfil(order, {}, now=NOW)
