"""troubleTicket through the API: create, read, the status lifecycle and its history, server-owned
attributes, append-only notes, roles and the events in the outbox."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from switchboard_dev import testing
from switchboard_kit.schedule import ManualClock

from ..conftest import T0, TICKETS, outbox, ticket

pytestmark = pytest.mark.asyncio


def as_(role: str, **kw: str) -> dict[str, str]:
    return testing.auth_headers(role, **kw)


async def create(client: httpx.AsyncClient, **extra: object) -> dict[str, object]:
    response = await client.post(TICKETS, json=ticket(**extra))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def patch(
    client: httpx.AsyncClient, id: object, body: dict[str, object], **kw: object
) -> httpx.Response:
    return await client.patch(f"{TICKETS}/{id}", json=body, **kw)  # type: ignore[arg-type]


class TestCreate:
    async def test_a_new_ticket_is_acknowledged_with_its_history_and_dates(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await client.post(TICKETS, json=ticket(status="nanana", externalId="123"))
        assert created.status_code == 201, created.text
        doc = created.json()
        assert created.headers["Location"] == doc["href"] == f"http://tickets.example{TICKETS}/{doc['id']}"
        assert doc["status"] == "acknowledged"  # an unknown status on create is not kept
        assert doc["externalId"] == "123"
        assert doc["creationDate"] == doc["lastUpdate"] == doc["statusChangeDate"] == "2026-12-02T10:00:00Z"
        (change,) = doc["statusChange"]
        assert change["status"] == "acknowledged"
        assert change["changeDate"] == "2026-12-02T10:00:00Z"
        assert change["changedBy"].startswith("integration-")
        # Major runs around the clock: 8 h.
        assert doc["expectedResolutionDate"] == "2026-12-02T18:00:00Z"
        assert (await client.get(doc["href"].removeprefix("http://tickets.example"))).json() == doc

    async def test_server_owned_attributes_sent_on_create_are_dropped(
        self, client: httpx.AsyncClient
    ) -> None:
        doc = await create(
            client,
            expectedResolutionDate="2030-01-01T00:00:00Z",
            resolutionDate="2030-01-01T00:00:00Z",
            statusChange=[{"status": "closed", "changeDate": "2030-01-01T00:00:00Z"}],
            creationDate="2001-01-01T00:00:00Z",
        )
        assert doc["expectedResolutionDate"] == "2026-12-02T18:00:00Z"
        assert "resolutionDate" not in doc
        assert [c["status"] for c in doc["statusChange"]] == ["acknowledged"]
        assert doc["creationDate"] == "2026-12-02T10:00:00Z"

    async def test_notes_get_an_id_a_date_and_an_author(self, client: httpx.AsyncClient) -> None:
        doc = await create(client, note=[{"author": "writer", "text": "a"}, {"text": "b"}])
        assert doc["note"][0] == {"author": "writer", "text": "a", "id": "1", "date": "2026-12-02T10:00:00Z"}
        assert doc["note"][1]["id"] == "2"
        assert doc["note"][1]["author"].startswith("integration-")

    @pytest.mark.parametrize(
        "body",
        [
            {"description": "x", "severity": "High"},  # no ticketType
            {"description": "x", "ticketType": "device"},  # no severity
            {"severity": "High", "ticketType": "device"},  # no description
            {"description": "x", "severity": "High", "ticketType": "device", "note": {"author": "a"}},
            {"description": "x", "severity": "Catastrophic", "ticketType": "device"},
            {"description": "x", "severity": "High", "ticketType": "plumbing"},
            {"description": "x", "severity": 3, "ticketType": "device"},
        ],
        ids=[
            "no-type",
            "no-severity",
            "no-description",
            "note-object",
            "unknown-severity",
            "unknown-type",
            "number",
        ],
    )
    async def test_bad_tickets_are_400_and_stored_nowhere(
        self, client: httpx.AsyncClient, app: FastAPI, body: dict[str, object]
    ) -> None:
        response = await client.post(TICKETS, json=body)
        assert response.status_code == 400, response.text
        assert {"code", "reason"} <= response.json().keys()
        assert await testing.sql(app, "SELECT id FROM trouble_ticket") == []
        assert await outbox(app) == []

    async def test_a_trailing_slash_post_creates_a_ticket(self, client: httpx.AsyncClient) -> None:
        response = await client.post(TICKETS + "/", json=ticket())
        assert response.status_code == 201, response.text


class TestRead:
    async def test_fields_returns_exactly_the_attributes_named(self, client: httpx.AsyncClient) -> None:
        doc = await create(client)
        one = await client.get(f"{TICKETS}/{doc['id']}", params={"fields": "description"})
        assert one.json() == {"description": doc["description"]}
        two = await client.get(f"{TICKETS}/{doc['id']}", params={"fields": "severity,status"})
        assert two.json() == {"severity": "Major", "status": "acknowledged"}

    async def test_filters_on_severity_type_and_status(self, client: httpx.AsyncClient) -> None:
        high = await create(client, severity="High", ticketType="device")
        low = await create(client, severity="Low", ticketType="connectivity")
        ids = lambda r: {t["id"] for t in r.json()}  # noqa: E731
        assert ids(await client.get(TICKETS, params={"severity": "High"})) == {high["id"]}
        assert ids(await client.get(TICKETS, params={"ticketType": "connectivity"})) == {low["id"]}
        assert ids(await client.get(TICKETS, params={"status": "acknowledged"})) == {high["id"], low["id"]}
        assert (await client.get(f"{TICKETS}/46846846846")).status_code == 404


class TestLifecycle:
    async def test_the_whole_way_with_history_who_and_why(
        self, client: httpx.AsyncClient, clock: ManualClock
    ) -> None:
        doc = await create(client)
        agent = as_("agent", subject="agent-ann")
        steps = [("inProgress", "Diagnostics"), ("pending", "Waiting for the customer"), ("inProgress", "Answered"),
                 ("held", "Field visit booked"), ("inProgress", "Visited"), ("resolved", "Fixed"), ("closed", "Confirmed")]  # fmt: skip
        for minutes, (status, reason) in enumerate(steps, start=1):
            clock.advance(timedelta(minutes=1))
            response = await patch(
                client, doc["id"], {"status": status, "statusChangeReason": reason}, headers=agent
            )
            assert response.status_code == 200, response.text
            doc = response.json()
            assert doc["status"] == status
            assert doc["statusChangeDate"] == doc["lastUpdate"]
            assert doc["statusChange"][-1] == {
                "status": status,
                "changeDate": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
                "changeReason": reason,
                "changedBy": "agent-ann",
                "@type": "StatusChange",
            }
        assert [c["status"] for c in doc["statusChange"]] == ["acknowledged", *(s for s, _ in steps)]
        assert doc["resolutionDate"] == "2026-12-02T10:06:00Z"

    @pytest.mark.parametrize(
        ("path", "target"),
        [
            ([], "resolved"),
            ([], "pending"),
            ([], "closed"),
            (["inProgress"], "acknowledged"),
            (["inProgress"], "closed"),
            (["inProgress", "pending"], "resolved"),
            (["inProgress", "held"], "pending"),
            (["inProgress", "resolved"], "inProgress"),
            (["inProgress", "resolved", "closed"], "inProgress"),
            (["cancelled"], "inProgress"),
            (["rejected"], "acknowledged"),
        ],
    )
    async def test_other_changes_are_409_and_change_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, path: list[str], target: str
    ) -> None:
        doc = await create(client)
        for status in path:
            doc = (await patch(client, doc["id"], {"status": status})).json()
        events_before = len(await outbox(app))
        response = await patch(client, doc["id"], {"status": target})
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "invalidTransition"
        assert (await client.get(f"{TICKETS}/{doc['id']}")).json() == doc
        assert len(await outbox(app)) == events_before

    async def test_an_unknown_status_on_patch_is_400(self, client: httpx.AsyncClient) -> None:
        doc = await create(client)
        assert (await patch(client, doc["id"], {"status": "nanana"})).status_code == 400

    @pytest.mark.parametrize(
        "attribute",
        ["expectedResolutionDate", "resolutionDate", "statusChangeDate", "creationDate", "lastUpdate"],
    )
    async def test_server_owned_dates_cannot_be_patched(
        self, client: httpx.AsyncClient, attribute: str
    ) -> None:
        doc = await create(client)
        response = await patch(client, doc["id"], {attribute: "2030-01-01T00:00:00Z"})
        assert response.status_code == 400, response.text
        assert (await client.get(f"{TICKETS}/{doc['id']}")).json() == doc

    @pytest.mark.parametrize("attribute", ["status", "severity", "ticketType", "description"])
    async def test_a_required_attribute_cannot_be_removed(
        self, client: httpx.AsyncClient, app: FastAPI, attribute: str
    ) -> None:
        doc = await create(client)
        merge = await patch(client, doc["id"], {attribute: None})
        assert merge.status_code == 400, merge.text
        json_patch = await client.patch(
            f"{TICKETS}/{doc['id']}",
            json=[{"op": "remove", "path": f"/{attribute}"}],
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert json_patch.status_code == 400, json_patch.text
        assert (await client.get(f"{TICKETS}/{doc['id']}")).json() == doc
        assert len(await outbox(app)) == 1

    async def test_history_cannot_be_rewritten(self, client: httpx.AsyncClient) -> None:
        doc = await create(client)
        forged = [{"status": "acknowledged", "changeDate": "2001-01-01T00:00:00Z"}]
        assert (await patch(client, doc["id"], {"statusChange": forged})).status_code == 400
        json_patch = [{"op": "remove", "path": "/statusChange/0"}]
        response = await client.patch(
            f"{TICKETS}/{doc['id']}", json=json_patch, headers={"Content-Type": "application/json-patch+json"}
        )
        assert response.status_code == 400

    async def test_notes_are_append_only(self, client: httpx.AsyncClient) -> None:
        doc = await create(client, note=[{"text": "first"}])
        clock_note = {"text": "second"}
        added = await patch(client, doc["id"], {"note": [*doc["note"], clock_note]})
        assert added.status_code == 200, added.text
        assert [n["text"] for n in added.json()["note"]] == ["first", "second"]
        assert added.json()["note"][1]["id"] == "2"
        edited = [{**added.json()["note"][0], "text": "changed"}, added.json()["note"][1]]
        assert (await patch(client, doc["id"], {"note": edited})).status_code == 409
        assert (await patch(client, doc["id"], {"note": added.json()["note"][1:]})).status_code == 409
        assert (await client.get(f"{TICKETS}/{doc['id']}")).json()["note"] == added.json()["note"]


class TestEvents:
    async def test_each_change_emits_its_events(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        doc = await create(client)
        await patch(client, doc["id"], {"status": "inProgress"})
        await patch(
            client, doc["id"], {"status": "pending", "description": "Waiting for the router's serial"}
        )
        await patch(client, doc["id"], {"status": "inProgress"})
        await patch(client, doc["id"], {"status": "resolved"})
        await patch(client, doc["id"], {"status": "closed"})
        assert (await client.delete(f"{TICKETS}/{doc['id']}")).status_code == 204
        rows = await outbox(app)
        assert {r["topic"] for r in rows} == {"tmf621.troubleTicket"}
        assert {r["key"] for r in rows} == {doc["id"]}
        assert [r["payload"]["eventType"] for r in rows] == [
            "TroubleTicketCreateEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketAttributeValueChangeEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketInformationRequiredEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketResolvedEvent",
            "TroubleTicketStatusChangeEvent",
            "TroubleTicketDeleteEvent",
        ]
        assert rows[0]["payload"]["event"]["troubleTicket"]["status"] == "acknowledged"
        assert rows[0]["payload"]["domain"] == "troubleTicket"
        resolved = rows[7]["payload"]["event"]["troubleTicket"]
        assert resolved["status"] == "resolved" and "resolutionDate" in resolved

    async def test_a_new_reason_alone_is_an_attribute_change(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        doc = await create(client)
        response = await patch(client, doc["id"], {"statusChangeReason": "Customer called again"})
        assert response.status_code == 200, response.text
        assert response.json()["statusChange"] == doc["statusChange"]
        assert [r["payload"]["eventType"] for r in await outbox(app)] == [
            "TroubleTicketCreateEvent",
            "TroubleTicketAttributeValueChangeEvent",
        ]

    async def test_a_patch_that_changes_nothing_emits_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        doc = await create(client)
        response = await patch(client, doc["id"], {"status": "acknowledged", "severity": "Major"})
        assert response.status_code == 200
        assert response.json() == doc
        assert len(await outbox(app)) == 1


class TestRoles:
    async def test_a_customer_sees_and_opens_only_its_own_tickets(self, client: httpx.AsyncClient) -> None:
        customer = as_("customer", party="CUST-A")
        mine = await client.post(
            TICKETS,
            json=ticket(relatedParty=[{"id": "CUST-A", "role": "customer", "@referredType": "Individual"}]),
            headers=customer,
        )
        assert mine.status_code == 201, mine.text
        theirs = await create(client)
        listed = await client.get(TICKETS, headers=customer)
        assert [t["id"] for t in listed.json()] == [mine.json()["id"]]
        assert (await client.get(f"{TICKETS}/{theirs['id']}", headers=customer)).status_code == 404
        assert (await client.post(TICKETS, json=ticket(), headers=customer)).status_code == 403
        assert (
            await patch(client, mine.json()["id"], {"status": "inProgress"}, headers=customer)
        ).status_code == 403
        assert (await client.get(TICKETS, headers=as_("agent"))).headers["X-Total-Count"] == "2"

    async def test_deleting_needs_a_manager_and_a_final_status(self, client: httpx.AsyncClient) -> None:
        doc = await create(client)
        url = f"{TICKETS}/{doc['id']}"
        assert (await client.delete(url, headers=as_("manager"))).status_code == 409  # still open
        await patch(client, doc["id"], {"status": "cancelled"}, headers=as_("agent"))
        assert (await client.delete(url, headers=as_("agent"))).status_code == 403
        assert (await client.get(url)).status_code == 200
        assert (await client.delete(url, headers=as_("manager"))).status_code == 204
        assert (await client.get(url)).status_code == 404
