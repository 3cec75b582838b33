"""What a client may do to order and item states with PATCH. Pure rules: no DB, no mocks."""

from __future__ import annotations

from typing import Any

import pytest

from ordering.states import (
    ALLOWED_TRANSITIONS,
    CANCELLING_ORDER_STATES,
    CLIENT_ORDER_TRANSITIONS,
    CLIENT_STATES,
    TERMINAL_ORDER_STATES,
    ItemState,
    OrderState,
    check_client_item_states,
    client_transition,
)
from ordering.validation import MAX_INDEXED_TEXT_LENGTH, overlong_indexed_values
from switchboard_kit.errors import Conflict


def test_the_table_covers_every_state_and_stays_inside_the_lifecycle() -> None:
    assert set(CLIENT_ORDER_TRANSITIONS) == set(OrderState)
    for current, targets in CLIENT_ORDER_TRANSITIONS.items():
        assert targets <= ALLOWED_TRANSITIONS[current], current
        assert targets <= CLIENT_STATES


def test_client_states_are_stop_and_resume() -> None:
    assert {OrderState.IN_PROGRESS, OrderState.HELD, OrderState.PENDING} == CLIENT_STATES


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (OrderState.IN_PROGRESS, OrderState.HELD),
        (OrderState.IN_PROGRESS, OrderState.PENDING),
        (OrderState.HELD, OrderState.IN_PROGRESS),
        (OrderState.PENDING, OrderState.IN_PROGRESS),
        (OrderState.PENDING, OrderState.HELD),
        (OrderState.ACKNOWLEDGED, OrderState.IN_PROGRESS),
    ],
)
def test_allowed(current: OrderState, target: OrderState) -> None:
    assert client_transition(current, target) == target


@pytest.mark.parametrize("state", list(OrderState))
def test_staying_in_a_state_is_a_no_op(state: OrderState) -> None:
    assert client_transition(state, state) == state


@pytest.mark.parametrize("current", sorted(CANCELLING_ORDER_STATES))
@pytest.mark.parametrize("target", sorted(set(OrderState)))
def test_an_order_being_cancelled_belongs_to_the_cancellation(
    current: OrderState, target: OrderState
) -> None:
    assert not CLIENT_ORDER_TRANSITIONS[current]
    if target != current:
        with pytest.raises(Conflict) as raised:
            client_transition(current, target)
        assert "cancellation" in (raised.value.message or "")


@pytest.mark.parametrize("current", sorted(TERMINAL_ORDER_STATES))
def test_final_orders_stay_final(current: OrderState) -> None:
    with pytest.raises(Conflict) as raised:
        client_transition(current, OrderState.IN_PROGRESS)
    assert "final" in (raised.value.message or "")


@pytest.mark.parametrize(
    "target", [OrderState.COMPLETED, OrderState.CANCELLED, OrderState.FAILED, OrderState.REJECTED]
)
def test_server_states_are_refused(target: OrderState) -> None:
    with pytest.raises(Conflict) as raised:
        client_transition(OrderState.IN_PROGRESS, target)
    assert raised.value.status == 409 and "server" in raised.value.reason


def order(*states: str) -> dict[str, Any]:
    return {"productOrderItem": [{"id": str(n), "state": s} for n, s in enumerate(states, start=1)]}


def test_unchanged_item_states_pass() -> None:
    check_client_item_states(order("held", "completed"), order("held", "completed"), new_item_state=None)


@pytest.mark.parametrize(
    "patched",
    [
        order("held", "rejected"),
        order("completed", "completed"),
        {"productOrderItem": [{"id": "1"}, {"id": "2", "state": "completed"}]},
    ],
)
def test_a_changed_or_removed_item_state_is_409(patched: dict[str, Any]) -> None:
    with pytest.raises(Conflict):
        check_client_item_states(order("held", "completed"), patched, new_item_state=ItemState.HELD)


def test_items_are_matched_by_id_not_position() -> None:
    patched = {"productOrderItem": [{"id": "2", "state": "completed"}, {"id": "1", "state": "held"}]}
    check_client_item_states(order("held", "completed"), patched, new_item_state=ItemState.HELD)


def test_a_new_item_gets_the_server_state_and_may_not_choose_another() -> None:
    patched = {"productOrderItem": [*order("pending")["productOrderItem"], {"id": "9"}]}
    check_client_item_states(order("pending"), patched, new_item_state=ItemState.PENDING)
    assert patched["productOrderItem"][1]["state"] == "pending"
    with pytest.raises(Conflict):
        check_client_item_states(
            order("pending"),
            {"productOrderItem": [{"id": "1", "state": "pending"}, {"id": "9", "state": "completed"}]},
            new_item_state=ItemState.PENDING,
        )
    with pytest.raises(Conflict):
        check_client_item_states(order("pending"), patched, new_item_state=None)


def test_overlong_indexed_values() -> None:
    ok = "x" * MAX_INDEXED_TEXT_LENGTH
    doc = {"relatedParty": [{"id": ok}, {"id": ok + "x"}, "not a party", {"name": "no id"}]}
    assert overlong_indexed_values(doc) == ["relatedParty[1].id"]
    assert overlong_indexed_values({}) == []
