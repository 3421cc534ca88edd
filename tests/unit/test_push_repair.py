"""A PATCH a partner refuses as unknown is followed by one PUT of the whole
object (processors/push.py, docs/adr/0042): the pure decision and the PUT
it builds, then a lane over a fake view and an in-memory HTTP partner."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition

from ocpi_hub.settings import Settings
from processors.evse_status_push import plan_evse_status
from processors.push import (
    LOCATIONS_PUSH,
    PartnerLane,
    PushRequest,
    PushTarget,
    WholeObjects,
    WholeRef,
    plan,
    repair_request,
    repair_wanted,
    whole_object,
)
from processors.session_lifecycle import Lifecycle, MeterConfig, decide
from processors.session_push import plan_session
from producers.partner_client import ModuleAnswer
from projections.position import position_field
from schemas.events import EvseStatusResolved, Party
from schemas.events.locations import EvseStatusResolvedPayload, location_key
from schemas.ocpi.locations import EvseStatus
from tests.unit.charger_facts import T0 as SESSION_T0
from tests.unit.charger_facts import meter, started
from tests.unit.test_push import patch, put

US = Party(country_code="ZZ", party_id="HUB")
STAMP = "2026-06-01T12:00:00Z"
LATER = "2026-06-01T12:05:00Z"


def served_location() -> dict[str, Any]:
    return {
        "id": "LOC1",
        "name": "Depot",
        "last_updated": LATER,
        "evses": [
            {
                "uid": "E1",
                "status": "CHARGING",
                "last_updated": LATER,
                "connectors": [{"id": "1", "standard": "IEC_62196_T2", "last_updated": STAMP}],
            }
        ],
    }


# --- the decision --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http", "ocpi", "wanted"),
    [
        (200, 2003, True),  # unknown location
        (200, 2001, True),  # "PUT it first" (our own sessions receiver)
        (404, None, True),
        (404, 2003, True),
        (200, 1000, False),  # taken
        (200, 2000, False),  # refused for another reason
        (200, 2004, False),
        (400, 2001, False),  # an HTTP error other than 404: the request itself
        (503, None, False),  # retried, never repaired
        (None, None, False),
    ],
)
def test_only_a_patch_refused_as_unknown_is_repaired(
    http: int | None, ocpi: int | None, wanted: bool
) -> None:
    request = plan(patch({"name": "x", "last_updated": STAMP}, evse="E1"), US)
    assert request is not None and request.whole is not None
    assert repair_wanted(request, ModuleAnswer(http, ocpi)) is wanted


def test_a_put_is_never_repaired_so_one_patch_gets_at_most_one_put() -> None:
    request = plan(put({"id": "LOC1", "last_updated": STAMP}), US)
    assert request is not None and request.whole is None
    assert not repair_wanted(request, ModuleAnswer(200, 2003))
    patched = plan(patch({"name": "x", "last_updated": STAMP}), US)
    assert patched is not None
    repair = repair_request(patched, served_location())
    assert repair.whole is None and not repair_wanted(repair, ModuleAnswer(404, None))


@pytest.mark.parametrize(
    ("evse", "connector", "ref"),
    [
        (None, None, WholeRef("locations", "ZZ/HUB/LOC1")),
        ("e1", None, WholeRef("locations", "ZZ/HUB/LOC1", "e1")),
        ("e1", "1", WholeRef("locations", "ZZ/HUB/LOC1", "e1", "1")),
    ],
)
def test_a_location_patch_names_its_object_in_the_view(
    evse: str | None, connector: str | None, ref: WholeRef
) -> None:
    request = plan(patch({"name": "x", "last_updated": STAMP}, evse=evse, connector=connector), US)
    assert request is not None and request.whole == ref


def test_the_put_is_the_whole_object_at_the_patchs_level() -> None:
    served = served_location()
    loc = whole_object(served, WholeRef("locations", "ZZ/HUB/LOC1"))
    evse = whole_object(served, WholeRef("locations", "ZZ/HUB/LOC1", "e1"))  # CiString
    connector = whole_object(served, WholeRef("locations", "ZZ/HUB/LOC1", "E1", "1"))
    assert loc == served
    assert evse == served["evses"][0]
    assert connector == served["evses"][0]["connectors"][0]
    assert whole_object(served, WholeRef("locations", "ZZ/HUB/LOC1", "E9")) is None
    assert whole_object(served, WholeRef("locations", "ZZ/HUB/LOC1", "E1", "7")) is None
    assert whole_object(None, WholeRef("locations", "ZZ/HUB/LOC1")) is None

    refused = plan(patch({"floor_level": "2", "last_updated": STAMP}, evse="E1"), US)
    assert refused is not None
    assert evse is not None
    repair = repair_request(refused, evse)
    assert (repair.method, repair.path, repair.body) == ("PUT", "/ZZ/HUB/LOC1/E1", evse)
    # Stamped with the object's own last_updated, not the PATCH's.
    assert repair.last_updated == datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    assert (repair.object_key, repair.correlation_id, repair.event_id) == (
        refused.object_key,
        refused.correlation_id,
        refused.event_id,
    )


def test_a_sessions_patch_and_an_evse_status_patch_are_repairable() -> None:
    state, [first] = decide(Lifecycle(), started(0, 1000), MeterConfig(), SESSION_T0)
    _, [second] = decide(state, meter(15, 2000), MeterConfig(), SESSION_T0)
    put_req, patch_req = plan_session(first, US), plan_session(second, US)
    assert put_req is not None and patch_req is not None
    assert put_req.whole is None
    assert patch_req.whole == WholeRef("sessions", second.aggregate_key)
    assert patch_req.audience is not None  # the repair PUT goes to the same eMSP

    resolved = EvseStatusResolved(
        event_id=uuid.uuid4(),
        aggregate_key=location_key("ZZ", "HUB", "LOC1"),
        occurred_at=SESSION_T0,
        recorded_at=SESSION_T0,
        source=US,
        correlation_id="c",
        payload=EvseStatusResolvedPayload(
            country_code="ZZ",
            party_id="HUB",
            location_id="LOC1",
            evse_uid="E1",
            status=EvseStatus.OUTOFORDER,
            reported_status=EvseStatus.AVAILABLE,
            last_updated=SESSION_T0,
        ),
    )
    status = plan_evse_status(resolved, US)
    assert status is not None and status.whole == WholeRef("locations", "ZZ/HUB/LOC1", "E1")


# --- a lane, with a fake view and an in-memory partner --------------------------------


class FakeView:
    """The view as a lane reads it: the served object and the positions,
    catching up with the log after ``lag`` reads."""

    def __init__(self, served: dict[str, Any] | None, applied: int, lag: int = 0) -> None:
        self.served, self.applied, self.lag, self.reads = served, applied, lag, 0

    async def read(self, key: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
        self.reads += 1
        behind = self.reads <= self.lag
        offset = self.applied - 10 if behind else self.applied
        return self.served, {position_field(LOCATIONS_PUSH.topic, 0): offset}


@dataclass
class Partner:
    """Answers a PATCH of what it does not hold with 2003; keeps what is PUT."""

    refuse_puts: bool = False
    seen: list[tuple[str, str, Any]] | None = None
    held: dict[str, Any] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen = self.seen if self.seen is not None else []
        self.held = self.held if self.held is not None else {}
        body = json.loads(request.content or b"null")
        path = request.url.path
        self.seen.append((request.method, path, body))
        if request.method == "PUT" and not self.refuse_puts:
            self.held[path] = body
            code = 1000
        elif request.method == "PATCH" and path in self.held:
            self.held[path] = {**self.held[path], **body}
            code = 1000
        else:
            code = 2001 if request.method == "PUT" else 2003
        return httpx.Response(200, json={"status_code": code, "timestamp": STAMP})


@dataclass
class Message:
    value: bytes
    offset: int
    partition: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def lane(view: FakeView, partner: Partner) -> PartnerLane:
    target = PushTarget(
        "P1", "http://partner.test/locations", "sealed", Party(country_code="NL", party_id="PEE")
    )
    settings = Settings().model_copy(update={"push_repair_view_wait_s": 2.0})
    lane = PartnerLane(
        target, "token", settings, US, LOCATIONS_PUSH, wholes=WholeObjects({"locations": view})
    )
    lane._http = httpx.AsyncClient(transport=httpx.MockTransport(partner))
    return lane


async def test_a_refused_patch_is_repaired_once_and_what_the_put_carried_is_not_resent() -> None:
    served = served_location()
    view = FakeView(served, applied=12, lag=2)  # the view catches up on its third read
    partner = Partner()
    pushing = lane(view, partner)
    first = patch({"name": "Depot", "last_updated": STAMP}, evse="E1")
    carried = patch({"max_voltage": 230, "last_updated": LATER}, evse="E1", connector="1")
    after = patch(
        {"name": "Depot 2", "last_updated": "2026-06-01T12:09:00Z"},
        evse="E1",
        at=datetime(2026, 6, 1, 12, 9, tzinfo=UTC),
    )
    messages: list[Any] = [
        Message(first.model_dump_json().encode(), 11),
        Message(carried.model_dump_json().encode(), 12),  # in the view the PUT was built from
        Message(after.model_dump_json().encode(), 13),  # after it: sent
    ]
    await pushing._deliver_partition(TopicPartition("t", 0), messages)

    assert partner.seen == [
        ("PATCH", "/locations/ZZ/HUB/LOC1/E1", first.payload.patch),
        ("PUT", "/locations/ZZ/HUB/LOC1/E1", served["evses"][0]),
        ("PATCH", "/locations/ZZ/HUB/LOC1/E1", after.payload.patch),
    ]
    assert partner.held == {
        "/locations/ZZ/HUB/LOC1/E1": {**served["evses"][0], **after.payload.patch}
    }
    assert view.reads == 3
    assert (pushing.tally.repaired, pushing.tally.delivered, pushing.tally.failures) == (1, 2, 0)


async def test_a_partner_that_refuses_the_put_too_is_rejected_without_a_loop() -> None:
    partner = Partner(refuse_puts=True)
    pushing = lane(FakeView(served_location(), applied=5), partner)
    refused = patch({"name": "x", "last_updated": STAMP})
    await pushing._deliver_partition(
        TopicPartition("t", 0),
        [Message(refused.model_dump_json().encode(), 5)],
    )
    assert [(m, p) for m, p, _ in partner.seen or []] == [
        ("PATCH", "/locations/ZZ/HUB/LOC1"),
        ("PUT", "/locations/ZZ/HUB/LOC1"),
    ]
    assert (pushing.tally.repaired, pushing.tally.failures) == (0, 1)
    assert pushing.tally.last_failure == "rejected: HTTP 200, OCPI 2001"


async def test_no_put_when_the_view_never_reaches_the_change_or_lacks_the_object() -> None:
    behind = FakeView(served_location(), applied=3)  # the PATCH is at offset 9
    partner = Partner()
    pushing = lane(behind, partner)
    pushing._settings = pushing._settings.model_copy(update={"push_repair_view_wait_s": 0.3})
    refused = patch({"name": "x", "last_updated": STAMP})
    await pushing._deliver(replace(_planned(refused), offset=9))
    assert [m for m, _, _ in partner.seen or []] == ["PATCH"]
    assert pushing.tally.failures == 1 and pushing.tally.repaired == 0

    missing = Partner()
    pushing = lane(FakeView(served_location(), applied=9), missing)
    gone = patch({"name": "x", "last_updated": STAMP}, evse="E404")
    await pushing._deliver(replace(_planned(gone), offset=9))
    assert [m for m, _, _ in missing.seen or []] == ["PATCH"]
    assert pushing.tally.last_failure == "rejected: not repaired: not in the view"


def _planned(event: object) -> PushRequest:
    request = plan(event, US)
    assert request is not None
    return replace(request, partition=0)
