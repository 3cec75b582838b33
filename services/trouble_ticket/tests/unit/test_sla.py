"""The SLA arithmetic, table-driven: each row is a ticket's life (status moves at given times) and what
its clocks must say. Rows named after a GLPI or Zammad issue reproduce that bug's scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from switchboard_kit.errors import BadRequest
from trouble_ticket import sla

POLICY = sla.Policy.from_dict(
    {
        "severities": ["Critical", "Major", "Minor"],
        "ticketTypes": ["connectivity", "billing"],
        "calendars": {
            "office": {
                "timezone": "UTC",
                "hours": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                "holidays": ["2026-12-25"],
            }
        },
        "rules": [
            {
                "name": "critical",
                "severity": "Critical",
                "firstResponseMinutes": 60,
                "resolutionMinutes": 240,
            },
            {"name": "major", "severity": "Major", "firstResponseMinutes": 120, "resolutionMinutes": 480},
            {
                "name": "minor",
                "severity": "Minor",
                "firstResponseMinutes": 240,
                "resolutionMinutes": 960,
                "calendar": "office",
            },
            {
                "name": "billing-major",
                "ticketType": "billing",
                "severity": "Major",
                "firstResponseMinutes": 30,
                "resolutionMinutes": 120,
            },
        ],
    }
)


def at(text: str) -> datetime:
    """``"Wed 10:00"`` in the week of 2026-11-30 (Mon) to 2026-12-06 (Sun); ``"Mon+1 09:00"`` the week after."""
    day, _, clock = text.partition(" ")
    week = 0
    if "+" in day:
        day, plus = day.split("+")
        week = int(plus)
    index = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].index(day)
    hours, minutes = (int(x) for x in clock.split(":")[:2])
    seconds = int(clock.split(":")[2]) if clock.count(":") == 2 else 0
    return datetime(2026, 11, 30, hours, minutes, seconds, tzinfo=UTC) + timedelta(days=index + 7 * week)


@dataclass
class Row:
    severity: str
    created: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (action, when): pause/resume/meet/Major...
    resolution_due: str | None = None
    first_response_due: str | None = None
    fires: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # (when, fired) in order
    ticket_type: str = "connectivity"
    policy: sla.Policy = POLICY


def play(row: Row) -> dict[str, Any]:
    clocks = sla.start(row.policy.rule(row.ticket_type, row.severity, None), at(row.created))
    for action, when in row.steps:
        now = at(when)
        if action == "pause":
            sla.pause(row.policy, clocks, now)
        elif action == "resume":
            sla.resume(row.policy, clocks, now)
        elif action == "meet":
            sla.meet(row.policy, clocks, sla.FIRST_RESPONSE, now)
        elif action.startswith("fire"):
            sla.fire(clocks, now)
        else:  # a new severity
            sla.retarget(row.policy, clocks, row.policy.rule(row.ticket_type, action, None), now)
    return clocks


ROWS = {
    # Around the clock.
    "24x7-no-pause": Row("Critical", "Wed 10:00", resolution_due="Wed 14:00", first_response_due="Wed 11:00"),
    "24x7-one-pause-moves-by-exactly-the-paused-time": Row(
        "Critical",
        "Wed 10:00",
        [("pause", "Wed 10:30"), ("resume", "Wed 11:30:07")],
        resolution_due="Wed 15:00:07",
    ),
    "glpi-17186-several-pauses-all-count": Row(
        "Critical",
        "Wed 10:00",
        [
            ("pause", "Wed 10:10"),
            ("resume", "Wed 10:20"),
            ("pause", "Wed 10:40"),
            ("resume", "Wed 11:40"),
            ("pause", "Wed 12:00"),
            ("resume", "Wed 12:05"),
        ],
        resolution_due="Wed 15:15",
    ),
    "glpi-16236-a-pause-over-midnight-24x7": Row(
        "Major", "Wed 20:00", [("pause", "Wed 23:00"), ("resume", "Thu 07:00")], resolution_due="Thu 12:00"
    ),
    "a-pause-and-resume-twice-in-a-row-are-no-ops": Row(
        "Critical",
        "Wed 10:00",
        [("pause", "Wed 10:30"), ("pause", "Wed 11:00"), ("resume", "Wed 11:30"), ("resume", "Wed 12:00")],
        resolution_due="Wed 15:00",
    ),
    # Business hours (Mon-Fri 09:00-17:00, 25 December off).
    "office-hours-over-a-weekend": Row(
        "Minor", "Fri 15:00", resolution_due="Tue+1 15:00", first_response_due="Mon+1 11:00"
    ),
    "glpi-10594-a-pause-over-the-weekend-counts-working-hours-only": Row(
        "Minor",
        "Fri 15:00",
        [("pause", "Fri 16:00"), ("resume", "Mon+1 10:00")],
        resolution_due="Tue+1 17:00",
    ),
    "created-on-saturday-starts-counting-on-monday": Row(
        "Minor", "Sat 10:00", first_response_due="Mon+1 13:00"
    ),
    "created-after-hours-starts-counting-next-morning": Row(
        "Minor", "Wed 18:30", first_response_due="Thu 13:00"
    ),
    "a-target-running-out-at-closing-time-stays-at-closing-time": Row(
        "Minor", "Mon 13:00", first_response_due="Mon 17:00"
    ),
    "a-target-that-would-land-after-hours-moves-to-the-next-working-day": Row(
        "Minor", "Mon 16:00", first_response_due="Tue 12:00"
    ),
    "a-holiday-is-skipped": Row("Minor", "Thu+3 16:00", first_response_due="Mon+4 12:00"),
    "resumed-out-of-hours-waits-for-the-next-opening": Row(
        "Minor",
        "Mon 09:00",
        [("pause", "Mon 10:00"), ("resume", "Mon 20:00")],
        first_response_due="Tue 12:00",
    ),
    # Severity or policy changed (GLPI loses the pending time when the SLA changes).
    "glpi-6902-severity-changed-while-paused-keeps-the-paused-time": Row(
        "Major",
        "Wed 10:00",
        [("pause", "Wed 11:00"), ("Critical", "Wed 12:00"), ("resume", "Wed 13:00")],
        resolution_due="Wed 16:00",  # 1 h consumed of the new 4 h, from 13:00
        first_response_due="Wed 13:00",
    ),
    "glpi-15605-severity-changed-while-running-keeps-the-consumed-time": Row(
        "Major", "Wed 10:00", [("Critical", "Wed 11:00")], resolution_due="Wed 14:00"
    ),
    "type-specific-rule-beats-the-severity-rule": Row(
        "Major", "Wed 10:00", resolution_due="Wed 12:00", ticket_type="billing"
    ),
    # Warnings (80 %) and breaches (100 %), each once.
    "warning-then-breach-each-once": Row(
        "Critical",
        "Wed 10:00",
        fires=[
            ("Wed 10:47", []),
            ("Wed 10:48", [("firstResponse", "warning")]),
            ("Wed 10:59", []),
            ("Wed 11:00", [("firstResponse", "breach")]),
            ("Wed 11:00", []),
            ("Wed 13:12", [("resolution", "warning")]),
            ("Wed 14:00", [("resolution", "breach")]),
            ("Wed 23:00", []),
        ],
    ),
    "a-met-target-never-fires": Row(
        "Critical",
        "Wed 10:00",
        [("meet", "Wed 10:05")],
        fires=[("Wed 12:00", []), ("Wed 13:12", [("resolution", "warning")])],
    ),
    "a-pause-after-a-warning-does-not-warn-again": Row(
        "Critical",
        "Wed 10:00",
        [("meet", "Wed 10:01"), ("fire", "Wed 13:15"), ("pause", "Wed 13:30"), ("resume", "Wed 15:00")],
        resolution_due="Wed 15:30",
        fires=[("Wed 15:29", []), ("Wed 15:30", [("resolution", "breach")])],
    ),
    "no-breach-while-paused": Row(
        "Critical",
        "Wed 10:00",
        [("meet", "Wed 10:01"), ("fire", "Wed 13:15"), ("pause", "Wed 13:30")],
        fires=[("Thu 20:00", [])],
    ),
    "a-severity-changed-while-paused-stays-paused": Row(
        "Critical",
        "Wed 10:00",
        [("meet", "Wed 10:01"), ("pause", "Wed 13:00"), ("Major", "Wed 13:30"), ("Critical", "Wed 13:40")],
        fires=[("Wed 20:00", [])],
    ),
    "a-severity-raised-while-paused-past-its-target-warns-and-breaches-on-resume": Row(
        "Major",
        "Wed 10:00",
        [("meet", "Wed 10:01"), ("pause", "Wed 16:00"), ("Critical", "Wed 16:30"), ("resume", "Wed 17:00")],
        resolution_due="Wed 17:00",
        fires=[("Wed 17:00", [("resolution", "warning"), ("resolution", "breach")]), ("Wed 18:00", [])],
    ),
    # Replicas whose clocks disagree: a pause stamped before the resume that preceded it counts nothing.
    "clock-skew-between-replicas-never-runs-time-backwards": Row(
        "Critical",
        "Wed 10:00",
        [
            ("pause", "Wed 11:00"),
            ("resume", "Wed 12:00:02"),
            ("pause", "Wed 12:00:00"),
            ("resume", "Wed 12:30"),
        ],
        resolution_due="Wed 15:30",
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_sla_clocks(row: Row) -> None:
    clocks = play(row)
    if row.resolution_due is not None:
        assert sla.due(clocks, sla.RESOLUTION) == at(row.resolution_due)
    if row.first_response_due is not None:
        assert sla.due(clocks, sla.FIRST_RESPONSE) == at(row.first_response_due)
    for when, expected in row.fires:
        assert sla.fire(clocks, at(when)) == expected, when


def test_next_due_is_the_next_warning_or_breach_and_none_while_paused() -> None:
    clocks = sla.start(POLICY.rule("connectivity", "Critical", None), at("Wed 10:00"))
    assert sla.next_due(clocks) == at("Wed 10:48")
    sla.fire(clocks, at("Wed 10:48"))
    assert sla.next_due(clocks) == at("Wed 11:00")
    sla.meet(POLICY, clocks, sla.FIRST_RESPONSE, at("Wed 10:50"))
    assert sla.next_due(clocks) == at("Wed 13:12")
    sla.pause(POLICY, clocks, at("Wed 11:00"))
    assert sla.next_due(clocks) is None
    sla.resume(POLICY, clocks, at("Wed 12:00"))
    assert sla.next_due(clocks) == at("Wed 14:12")
    sla.meet(POLICY, clocks, sla.RESOLUTION, at("Wed 12:30"))
    assert sla.next_due(clocks) is None


def test_consumed_time_is_kept_in_whole_microseconds() -> None:
    clocks = sla.start(POLICY.rule("connectivity", "Critical", None), at("Wed 10:00"))
    sla.pause(POLICY, clocks, at("Wed 10:00") + timedelta(microseconds=1))
    assert sla.consumed(POLICY, clocks, sla.RESOLUTION, at("Thu 10:00")) == 1


@pytest.mark.parametrize(
    ("ticket_type", "severity"), [("connectivity", "Catastrophic"), ("plumbing", "Major"), ("billing", None)]
)
def test_unknown_severity_or_type_is_a_400(ticket_type: str, severity: Any) -> None:
    with pytest.raises(BadRequest):
        POLICY.rule(ticket_type, severity, None)


def test_the_default_policy_covers_what_the_issue_and_the_ctk_need() -> None:
    policy = sla.Policy.load()
    for ticket_type in ("connectivity", "device", "service", "billing", "billDispute"):
        for severity in ("Critical", "Major", "Minor", "High", "Low"):
            rule = policy.rule(ticket_type, severity, None)
            assert rule.targets[sla.FIRST_RESPONSE] < rule.targets[sla.RESOLUTION]
            if severity == "Critical":  # around the clock
                assert rule.calendar.around_the_clock
