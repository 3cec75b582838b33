"""SLA timers through the API and the kit's scheduler, on a real database: warnings at 80 % and breaches
at 100 % fire once each, also from a restarted service; nothing fires while a ticket waits; a resume
moves the targets by exactly the paused time.

Each test has its own database and starts the service twice (a restart), so it does not use the
rolled-back client of the API tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import resources
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from switchboard_dev import testing
from switchboard_kit.schedule import ManualClock
from trouble_ticket.app import create_app
from trouble_ticket.events import EXTENSION_EVENT_TYPES

from ..conftest import SERVICE_DIR, T0, TICKETS, make_settings, run_timers, ticket

pytestmark = pytest.mark.asyncio


@pytest.fixture
def db(pg_server_url: str) -> Iterator[str]:
    url = testing.create_database(pg_server_url, "sb_trouble_ticket_sla")
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    yield url
    testing.drop_database(url)


@asynccontextmanager
async def service(db: str, clock: ManualClock) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """One run of the service (its own scheduler and store) on ``db``, reading ``clock``."""
    app = create_app(make_settings(db), clock=clock)
    async with testing.running(app) as client:
        yield app, client


async def sla_events(app: FastAPI) -> list[tuple[str, str]]:
    rows = await testing.sql(
        app,
        "SELECT payload FROM outbox WHERE event_type LIKE 'TroubleTicketSla%' ORDER BY seq",
    )
    return [(r["payload"]["event"]["sla"]["target"], r["payload"]["eventType"]) for r in rows]


WARNING, BREACH = "TroubleTicketSlaWarningEvent", "TroubleTicketSlaBreachEvent"


async def test_warning_and_breach_fire_once_each_across_a_restart(db: str) -> None:
    clock = ManualClock(T0)
    async with service(db, clock) as (app, client):
        created = await client.post(TICKETS, json=ticket(severity="Critical"))  # 15 min, 4 h, 24x7
        assert created.status_code == 201, created.text
        # An update that is not an answer leaves the first-response clock running (Zammad #5177).
        clock.advance(timedelta(minutes=5))
        assert (await client.patch(created.json()["href"][len("http://tickets.example") :], json={"description": "More detail"})).status_code == 200  # fmt: skip
        clock.advance(timedelta(minutes=6, seconds=59))
        await run_timers(app)
        assert await sla_events(app) == []
        clock.advance(timedelta(seconds=1))  # 12 min: 80 % of 15
        await run_timers(app)
        await run_timers(app)
        assert await sla_events(app) == [("firstResponse", WARNING)]
    # A restarted service (a new scheduler, the same rows) does not fire it again.
    async with service(db, clock) as (app, client):
        await run_timers(app)
        assert await sla_events(app) == [("firstResponse", WARNING)]
        clock.advance(timedelta(minutes=3))
        await run_timers(app)
        await run_timers(app)
        events = await testing.sql(app, "SELECT payload FROM outbox WHERE event_type = :t", t=BREACH)
        assert await sla_events(app) == [("firstResponse", WARNING), ("firstResponse", BREACH)]
    breach = events[0]["payload"]
    # The envelope is what contracts/events/TroubleTicketSlaBreachEvent.schema.json describes.
    EXTENSION_EVENT_TYPES[BREACH].model_validate(breach)
    assert breach["event"]["troubleTicket"]["id"] == created.json()["id"]
    assert breach["event"]["sla"] == {
        "target": "firstResponse",
        "kind": "breach",
        "dueDate": "2026-12-02T10:15:00Z",  # the kit writes whole seconds without a fraction
    }


async def test_nothing_fires_while_pending_and_a_resume_moves_the_target_by_the_paused_time(db: str) -> None:
    clock = ManualClock(T0)
    async with service(db, clock) as (app, client):
        created = (await client.post(TICKETS, json=ticket(severity="Critical"))).json()
        url = f"{TICKETS}/{created['id']}"
        assert created["expectedResolutionDate"] == "2026-12-02T14:00:00Z"
        clock.advance(timedelta(minutes=10))
        assert (
            await client.patch(url, json={"status": "inProgress"})
        ).status_code == 200  # first response met
        clock.advance(timedelta(minutes=10))
        waiting = await client.patch(url, json={"status": "pending", "statusChangeReason": "Need the serial"})
        assert waiting.json()["expectedResolutionDate"] == "2026-12-02T14:00:00Z"
        # Ten hours waiting on the customer: far past the 4 h target, and yet no warning, no breach.
        clock.advance(timedelta(hours=10))
        await run_timers(app)
        assert await sla_events(app) == []
        assert (await testing.sql(app, "SELECT next_action_at FROM trouble_ticket"))[0][
            "next_action_at"
        ] is None
        resumed = await client.patch(
            url, json={"status": "inProgress", "statusChangeReason": "Serial received"}
        )
        assert resumed.json()["expectedResolutionDate"] == "2026-12-03T00:00:00Z"  # 14:00 + exactly 10 h
        clock.advance(timedelta(hours=3, minutes=12) - timedelta(minutes=20) - timedelta(seconds=1))
        await run_timers(app)
        assert await sla_events(app) == []
        clock.advance(timedelta(seconds=1))  # 80 % of 4 h of running time
        await run_timers(app)
        assert await sla_events(app) == [("resolution", WARNING)]
        clock.advance(timedelta(minutes=30))
        resolved = await client.patch(url, json={"status": "resolved"})
        assert resolved.json()["resolutionDate"] == "2026-12-02T23:42:00Z"
        clock.advance(timedelta(hours=5))
        await run_timers(app)
        assert await sla_events(app) == [("resolution", WARNING)]  # resolved in time: no breach


async def test_an_unknown_severity_on_patch_is_a_400(db: str) -> None:
    async with service(db, ManualClock(T0)) as (_, client):
        created = (await client.post(TICKETS, json=ticket())).json()
        response = await client.patch(f"{TICKETS}/{created['id']}", json={"severity": "Catastrophic"})
        assert response.status_code == 400, response.text
        moved = await client.patch(f"{TICKETS}/{created['id']}", json={"severity": "Critical"})
        assert moved.status_code == 200, moved.text
        # Raised from Major (8 h) to Critical (4 h) at once: the target comes in.
        assert moved.json()["expectedResolutionDate"] == "2026-12-02T14:00:00Z"


async def test_a_new_policy_replans_running_clocks_and_keeps_the_time_used(db: str, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    async with service(db, clock) as (app, client):
        created = (await client.post(TICKETS, json=ticket(severity="Major"))).json()  # 8 h around the clock
        assert created["expectedResolutionDate"] == "2026-12-02T18:00:00Z"
        await client.patch(f"{TICKETS}/{created['id']}", json={"status": "inProgress"})
    policy = json.loads(resources.files("trouble_ticket").joinpath("policy/default.json").read_text())
    policy["version"] = "test-shorter-major"
    next(r for r in policy["rules"] if r["name"] == "major")["resolutionMinutes"] = 240
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    clock.advance(timedelta(hours=1))
    app = create_app(make_settings(db, sla_policy_path=str(path)), clock=clock)
    async with testing.running(app) as client:
        await run_timers(app)
        clock.advance(timedelta(minutes=5))
        await run_timers(app)  # the re-plan schedule (every 5 min) makes the clock due, the timers re-plan it
        replanned = (await client.get(f"{TICKETS}/{created['id']}")).json()
        assert replanned["expectedResolutionDate"] == "2026-12-02T14:00:00Z"  # T0 + the new 4 h
        types = [
            r["event_type"] for r in await testing.sql(app, "SELECT event_type FROM outbox ORDER BY seq")
        ]
        assert types[-1] == "TroubleTicketAttributeValueChangeEvent"
        await run_timers(app)
        assert len(await testing.sql(app, "SELECT id FROM outbox")) == len(types)  # once
        clock.advance(timedelta(hours=2, minutes=7))  # 80 % of the new 4 h (13:12)
        await run_timers(app)
        assert await sla_events(app) == [("resolution", WARNING)]
