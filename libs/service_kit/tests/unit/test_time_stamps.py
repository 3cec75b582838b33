"""The kit's time stamps come back unchanged through a TMF model (a PATCH re-validates the stored document)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from switchboard_kit.events import format_datetime
from tmf_models import common, tmf622


@pytest.mark.parametrize("microsecond", [0, 1, 999, 1000, 120000, 123456, 999999])
def test_a_stamp_round_trips_through_the_models(microsecond: int) -> None:
    stamp = format_datetime(datetime(2026, 12, 2, 12, 0, 5, microsecond, tzinfo=UTC))
    order = tmf622.ProductOrder.model_validate(
        {"productOrderItem": [{"id": "1", "action": "add"}], "orderDate": stamp}
    )
    assert common.dump(order)["orderDate"] == stamp


def test_stamps_are_utc_and_cut_to_the_millisecond() -> None:
    assert format_datetime(datetime(2026, 12, 2, 12, 0, 5, tzinfo=UTC)) == "2026-12-02T12:00:05Z"
    assert format_datetime(datetime(2026, 12, 2, 12, 0, 5, 120999, tzinfo=UTC)) == "2026-12-02T12:00:05.120Z"
    paris = timezone(timedelta(hours=1))
    assert format_datetime(datetime(2026, 12, 2, 13, 0, 5, 500, tzinfo=paris)) == "2026-12-02T12:00:05Z"
