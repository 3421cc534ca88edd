"""The CDR builder's fold and shell (with fakes), the CDR push plan, and the
CDR view's fold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from processors.cdr_builder import BuilderState, build_and_emit, step, tariffs_at_start
from processors.cdr_push import CDRS_PUSH, plan_cdr
from projections.mongo import cdrs as cdr_view
from projections.position import Record
from schemas.events import CdrIssued, Party, SessionPatched, SessionPut
from schemas.events.sessions import SessionPatchedPayload, SessionPutPayload
from tests.cdr_objects import completed_session, issued_cdr, priced_location, simple_tariff

US = Party(country_code="ZZ", party_id="HUB")
NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)


def _meta(key: str) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "aggregate_key": key,
        "occurred_at": NOW,
        "recorded_at": NOW,
        "source": US,
        "correlation_id": "c-1",
    }


def put(session: dict[str, Any]) -> SessionPut:
    return SessionPut(
        **_meta(f"{session['country_code']}/{session['party_id']}/{session['id']}"),
        payload=SessionPutPayload(
            country_code=session["country_code"],
            party_id=session["party_id"],
            session_id=session["id"],
            session=session,
            last_updated=session["last_updated"],
        ),
    )


def completing_patch(session: dict[str, Any]) -> SessionPatched:
    return SessionPatched(
        **_meta(f"ZZ/HUB/{session['id']}"),
        payload=SessionPatchedPayload(
            country_code="ZZ",
            party_id="HUB",
            session_id=session["id"],
            patch={"status": "COMPLETED", "last_updated": "2026-06-02T08:31:00Z"},
            last_updated="2026-06-02T08:31:00Z",
        ),
    )


# --- the builder's fold --------------------------------------------------------------


def test_a_cdr_is_asked_for_once_when_our_session_completes() -> None:
    active = {**completed_session(), "status": "ACTIVE"}
    state, wanted = step(BuilderState(), put(active), US)
    assert wanted is None and state.session is not None
    state, wanted = step(state, completing_patch(active), US)
    assert wanted is not None and wanted["status"] == "COMPLETED"
    done = BuilderState(session=state.session, done=True)
    _, again = step(done, completing_patch(active), US)
    assert again is None


def test_a_partners_session_never_gets_a_cdr_from_us() -> None:
    theirs = {**completed_session(), "country_code": "NL", "party_id": "PEE"}
    _, wanted = step(BuilderState(), put(theirs), US)
    assert wanted is None


def test_the_state_survives_the_table() -> None:
    state = BuilderState(session=completed_session(), done=True)
    assert BuilderState.from_table(state.to_table()) == state
    assert BuilderState.from_table(None) == BuilderState()


class FakeInputs:
    def __init__(self, location: dict[str, Any] | None, tariffs: dict[str, Any]) -> None:
        self._location = location
        self._tariffs = tariffs
        self.asked: list[tuple[str, datetime]] = []

    async def location_as_of(
        self, country_code: str, party_id: str, location_id: str, at: datetime
    ) -> Any:
        return self._location

    async def tariff_as_of(
        self, country_code: str, party_id: str, tariff_id: str, at: datetime
    ) -> Any:
        self.asked.append((tariff_id, at))
        return self._tariffs.get(tariff_id)

    async def terminals_serving(self, location_id: str, evse_uid: str) -> list[Any]:
        return []  # no payment terminal at these chargers


async def test_the_tariffs_are_read_as_of_the_session_start() -> None:
    inputs = FakeInputs(None, {"CDR-T1": simple_tariff()})
    found = await tariffs_at_start(
        inputs, completed_session(), priced_location(tariff_ids=["CDR-T1"])
    )
    assert found == {"CDR-T1": simple_tariff()}
    assert inputs.asked == [("CDR-T1", datetime(2026, 6, 2, 8, 0, tzinfo=UTC))]


def test_the_shell_emits_the_priced_cdr_or_logs_why_not() -> None:
    emitted: list[CdrIssued] = []

    async def emit(event: CdrIssued) -> None:
        emitted.append(event)

    session = completed_session()
    cause = completing_patch(session)
    inputs = FakeInputs(priced_location(tariff_ids=["CDR-T1"]), {"CDR-T1": simple_tariff()})
    assert asyncio.run(build_and_emit(session, cause, inputs, emit, NOW, 1.0))
    [event] = emitted
    assert event.causation_id == cause.event_id
    assert event.payload.cdr["total_cost"]["excl_vat"] == 3.575
    nowhere = FakeInputs(None, {})
    assert not asyncio.run(build_and_emit(session, cause, nowhere, emit, NOW, 0.01))
    assert len(emitted) == 1


# --- the push plan -----------------------------------------------------------------


def _issued(session: dict[str, Any] | None = None) -> CdrIssued:
    return issued_cdr(NOW, session=session, correlation_id="c-1")


def test_our_cdr_is_posted_to_its_tokens_emsp_only() -> None:
    event = _issued()
    request = plan_cdr(event, US)
    assert request is not None
    assert (request.method, request.path) == ("POST", "")
    assert request.audience == Party(country_code="NL", party_id="PEE")
    assert request.body == event.payload.cdr
    assert plan_cdr(event, Party(country_code="DE", party_id="XYZ")) is None
    assert plan_cdr(completing_patch(completed_session()), US) is None
    assert CDRS_PUSH.event_types == frozenset({"CdrIssued"})


# --- the view's fold -----------------------------------------------------------------


def test_the_view_keeps_the_first_cdr_of_a_key() -> None:
    first = _issued()
    second = _issued({**completed_session(), "kwh": 1})
    doc = cdr_view.apply(None, Record("ocpi.cdrs.v1", 0, 5, first))
    assert doc is not None and doc["role"] == "issued" and doc["_token_party"] == "NL/PEE"
    after = cdr_view.apply(doc, Record("ocpi.cdrs.v1", 0, 6, second))
    assert after is not None
    assert after["cdr"] == first.payload.cdr
    assert after["_positions"] == {"ocpi_cdrs_v1@0": 6}
    # A record applied before changes nothing (re-delivery, replay).
    assert cdr_view.apply(after, Record("ocpi.cdrs.v1", 0, 5, first)) is after
