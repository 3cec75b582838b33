"""SLA clocks: the policy, the calendars and the arithmetic of targets that pause and resume. No I/O.

A policy (``policy/default.json``, or ``TROUBLE_TICKET_SLA_POLICY_PATH``) gives each combination of
ticket type, severity and priority a *first-response* and a *resolution* target, counted on a
calendar: around the clock (``null``) or working hours with holidays. The most specific rule wins (a
rule that names more of type, severity and priority beats one that names fewer; among equals, the
first in the file).

Each target is a budget of calendar time. A clock keeps, per target, the time it has already
consumed (in whole microseconds, so a resume moves a target by *exactly* the paused time) and the
moment it last (re)started; the due time is always ``calendar.add(since, budget - consumed)``. So:

- a pause (``pending``, ``held``) banks the time consumed so far and stops the clock; a resume
  restarts it, and the due times move by exactly the paused (calendar) time;
- a severity or policy change replaces the budget and keeps what was consumed, paused or not;
- a warning falls due at 80 % of a budget and a breach at 100 %; each fires once (``warned``,
  ``breached`` are kept with the clock, in the ticket's row, in the unit of work that emits them);
- a target stops for good when met: the first response when the ticket first leaves
  ``acknowledged``, the resolution when it is resolved (or closed, cancelled, rejected).

Time never runs backwards here: an interval whose end a lagging replica stamped before its start
counts as zero (see ``Calendar.between``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from switchboard_kit.errors import BadRequest

FIRST_RESPONSE = "firstResponse"
RESOLUTION = "resolution"
TARGETS = (FIRST_RESPONSE, RESOLUTION)
WARNING_SHARE = 0.8
WARNING, BREACH = "warning", "breach"

_US = 1_000_000  # microseconds in a second
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DAYS = 3660  # a calendar with no working time at all must not loop forever


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def _delta(us: int) -> timedelta:
    return timedelta(microseconds=us)


# ------------------------------------------------------------------------------------- calendars


@dataclasses.dataclass(frozen=True)
class Calendar:
    """Working hours per weekday in a time zone, minus holidays. ``None`` hours: around the clock."""

    name: str
    zone: ZoneInfo | None = None
    hours: Mapping[int, tuple[time, time]] = dataclasses.field(default_factory=dict)  # weekday -> open, close
    holidays: frozenset[date] = frozenset()

    @property
    def around_the_clock(self) -> bool:
        return self.zone is None

    def _intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) from the day of ``start`` on, in order."""
        assert self.zone is not None
        day = start.astimezone(self.zone).date()
        for _ in range(_MAX_DAYS):
            opening = self.hours.get(day.weekday())
            if opening is not None and day not in self.holidays:
                begin = datetime.combine(day, opening[0], self.zone).astimezone(UTC)
                end = datetime.combine(day, opening[1], self.zone).astimezone(UTC)
                if end > begin:
                    yield begin, end
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name} has no working time in {_MAX_DAYS} days")

    def between(self, start: datetime, end: datetime) -> int:
        """Calendar microseconds from ``start`` to ``end``; 0 when ``end`` is not after ``start``."""
        if end <= start:
            return 0
        if self.around_the_clock:
            return _us(end - start)
        total = 0
        for begin, finish in self._intervals(start):
            if begin >= end:
                break
            total += max(0, _us(min(finish, end) - max(begin, start)))
        return total

    def add(self, start: datetime, us: int) -> datetime:
        """The moment ``us`` calendar microseconds after ``start`` (``start`` itself for 0 or less). A
        target that runs out exactly at closing time lands at closing time, not at the next opening."""
        if us <= 0:
            return start
        if self.around_the_clock:
            return start + _delta(us)
        left = us
        for begin, finish in self._intervals(start):
            if finish <= start:
                continue
            begin = max(begin, start)
            available = _us(finish - begin)
            if left <= available:
                return begin + _delta(left)
            left -= available
        raise AssertionError("unreachable: _intervals raises first")


AROUND_THE_CLOCK = Calendar("24x7")


# ---------------------------------------------------------------------------------------- policy


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    targets: Mapping[str, int]  # target -> budget in microseconds
    calendar: Calendar
    ticket_type: str | None = None
    severity: str | None = None
    priority: str | None = None

    def matches(self, ticket_type: str, severity: str, priority: str | None) -> bool:
        return (
            (self.ticket_type is None or self.ticket_type == ticket_type)
            and (self.severity is None or self.severity == severity)
            and (self.priority is None or self.priority == priority)
        )

    @property
    def specificity(self) -> int:
        return sum(v is not None for v in (self.ticket_type, self.severity, self.priority))


@dataclasses.dataclass(frozen=True)
class Policy:
    version: str
    severities: tuple[str, ...]
    ticket_types: tuple[str, ...]
    rules: tuple[Rule, ...]

    def check(self, ticket_type: Any, severity: Any) -> None:
        """400 for a ticket type or severity the policy does not know (nothing is stored)."""
        if severity not in self.severities:
            raise BadRequest(
                "Unknown severity", f"severity {severity!r} is not one of {', '.join(self.severities)}"
            )
        if ticket_type not in self.ticket_types:
            raise BadRequest(
                "Unknown ticketType",
                f"ticketType {ticket_type!r} is not one of {', '.join(self.ticket_types)}",
            )

    def rule(self, ticket_type: str, severity: str, priority: str | None) -> Rule:
        self.check(ticket_type, severity)
        found = [r for r in self.rules if r.matches(ticket_type, severity, priority)]
        if not found:
            raise BadRequest("No SLA policy", f"no SLA rule covers {ticket_type}/{severity}/{priority}")
        best = max(r.specificity for r in found)
        return next(r for r in found if r.specificity == best)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        calendars = {"24x7": AROUND_THE_CLOCK}
        for name, spec in (data.get("calendars") or {}).items():
            hours = {}
            for day, span in (spec.get("hours") or {}).items():
                opening, closing = (time.fromisoformat(t) for t in span)
                hours[_WEEKDAYS.index(day)] = (opening, closing)
            calendars[name] = Calendar(
                name,
                ZoneInfo(spec.get("timezone", "UTC")),
                hours,
                frozenset(date.fromisoformat(d) for d in spec.get("holidays") or ()),
            )
        rules = []
        for index, spec in enumerate(data["rules"]):
            calendar_name = spec.get("calendar") or "24x7"
            if calendar_name not in calendars:
                raise ValueError(f"rule {index}: unknown calendar {calendar_name!r}")
            rules.append(
                Rule(
                    name=spec.get("name") or f"rule-{index}",
                    targets={
                        FIRST_RESPONSE: int(spec["firstResponseMinutes"]) * 60 * _US,
                        RESOLUTION: int(spec["resolutionMinutes"]) * 60 * _US,
                    },
                    calendar=calendars[calendar_name],
                    ticket_type=spec.get("ticketType"),
                    severity=spec.get("severity"),
                    priority=spec.get("priority"),
                )
            )
        return cls(
            version=str(data.get("version", "")),
            severities=tuple(data["severities"]),
            ticket_types=tuple(data["ticketTypes"]),
            rules=tuple(rules),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        if path is None:
            text = resources.files("trouble_ticket").joinpath("policy/default.json").read_text()
        else:
            text = Path(path).read_text()
        return cls.from_dict(json.loads(text))


# ----------------------------------------------------------------------------------------- clocks


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _calendar(policy: Policy, clocks: Mapping[str, Any]) -> Calendar:
    for rule in policy.rules:
        if rule.name == clocks["rule"]:
            return rule.calendar
    return AROUND_THE_CLOCK


def _plan(target: dict[str, Any], calendar: Calendar, since: datetime) -> None:
    left = target["budget"] - target["consumed"]
    target["due"] = _iso(calendar.add(since, left))
    target["warnAt"] = _iso(calendar.add(since, int(target["budget"] * WARNING_SHARE) - target["consumed"]))


def start(rule: Rule, now: datetime) -> dict[str, Any]:
    """The clocks of a new ticket, running from ``now``."""
    clocks: dict[str, Any] = {"rule": rule.name, "running": True, "since": _iso(now), "targets": {}}
    for name in TARGETS:
        target = {
            "budget": rule.targets[name],
            "consumed": 0,
            "warned": False,
            "breached": False,
            "met": None,
        }
        _plan(target, rule.calendar, now)
        clocks["targets"][name] = target
    return clocks


def _active(clocks: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, target in clocks["targets"].items():
        if target["met"] is None:
            yield name, target


def pause(policy: Policy, clocks: dict[str, Any], now: datetime) -> None:
    """Banks the time consumed so far and stops the clocks (a no-op when they stand already)."""
    if not clocks["running"]:
        return
    spent = _calendar(policy, clocks).between(_dt(clocks["since"]), now)
    for _, target in _active(clocks):
        target["consumed"] += spent
    clocks["running"] = False
    clocks["since"] = None


def resume(policy: Policy, clocks: dict[str, Any], now: datetime) -> None:
    """Restarts paused clocks at ``now``: every due time moves by exactly the paused calendar time."""
    if clocks["running"]:
        return
    clocks["running"] = True
    clocks["since"] = _iso(now)
    calendar = _calendar(policy, clocks)
    for _, target in _active(clocks):
        _plan(target, calendar, now)


def meet(policy: Policy, clocks: dict[str, Any], name: str, now: datetime) -> None:
    """Stops target ``name`` for good (met at ``now``, or ended by a final status)."""
    target = clocks["targets"][name]
    if target["met"] is not None:
        return
    if clocks["running"]:
        target["consumed"] += _calendar(policy, clocks).between(_dt(clocks["since"]), now)
    target["met"] = _iso(now)


def retarget(policy: Policy, clocks: dict[str, Any], rule: Rule, now: datetime) -> None:
    """A new rule (severity, type, priority or policy changed): new budgets, the consumed time kept."""
    running = clocks["running"]
    pause(policy, clocks, now)
    clocks["rule"] = rule.name
    for name, target in _active(clocks):
        target["budget"] = rule.targets[name]
    if running:
        resume(policy, clocks, now)


def fire(clocks: dict[str, Any], now: datetime) -> list[tuple[str, str]]:
    """The warnings and breaches due at ``now`` that have not fired yet, marked fired: (target, kind).
    Paused clocks fire nothing."""
    fired: list[tuple[str, str]] = []
    if not clocks["running"]:
        return fired
    for name, target in _active(clocks):
        if not target["warned"] and _dt(target["warnAt"]) <= now:
            target["warned"] = True
            fired.append((name, WARNING))
        if not target["breached"] and _dt(target["due"]) <= now:
            target["breached"] = True
            fired.append((name, BREACH))
    return fired


def next_due(clocks: Mapping[str, Any]) -> datetime | None:
    """When the next warning or breach falls due (None while paused or when nothing is left)."""
    if not clocks["running"]:
        return None
    times: list[datetime] = []
    for _, target in _active(clocks):
        if not target["warned"]:
            times.append(_dt(target["warnAt"]))
        if not target["breached"]:
            times.append(_dt(target["due"]))
    return min(times, default=None)


def due(clocks: Mapping[str, Any], name: str) -> datetime:
    return _dt(clocks["targets"][name]["due"])


def consumed(policy: Policy, clocks: Mapping[str, Any], name: str, now: datetime) -> int:
    """Microseconds of target ``name`` consumed by ``now``."""
    target = clocks["targets"][name]
    spent = int(target["consumed"])
    if clocks["running"] and target["met"] is None:
        spent += _calendar(policy, clocks).between(_dt(clocks["since"]), now)
    return spent
