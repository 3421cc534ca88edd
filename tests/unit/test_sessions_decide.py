"""Decisions and the fold of the Sessions slice (producers.sessions): PUT
replaces, PATCH appends charging periods, older writes are recorded but
change nothing; a partner's session bills only a token we issued."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from producers.sessions import (
    SLICE,
    Billing,
    billed_token,
    decide,
    evolve,
    find,
    patch_session,
    plan_patch,
    plan_put,
    put_session,
)
from producers.tokens import TokenState
from producers.write_path import Origin, RefusedError
from projections.mongo.sessions import apply
from schemas.events import Party, SessionPatched, SessionPut
from schemas.events.sessions import SessionRef
from schemas.ocpi.status_codes import OcpiStatus
from tests.ocpi_sessions import period, session
from tests.token_objects import token
from tests.unit.session_factories import T0, patch, put

REF = SessionRef(country_code="nl", party_id="abc", session_id="s1")
ORIGIN = Origin(Party(country_code="NL", party_id="ABC"), "corr-1")


def test_put_becomes_one_event_keyed_by_the_folded_session_key() -> None:
    planned = plan_put(REF, session(), None, ORIGIN, T0)
    assert planned.created
    assert isinstance(planned.event, SessionPut)
    assert planned.event.aggregate_key == "NL/ABC/S1"
    assert planned.event.payload.session["id"] == "S1"
    assert not plan_put(REF, session(), session(), ORIGIN, T0).created


@pytest.mark.parametrize(
    ("field", "value"), [("id", "S2"), ("party_id", "XYZ"), ("country_code", "BE")]
)
def test_put_naming_another_session_is_refused(field: str, value: str) -> None:
    with pytest.raises(RefusedError) as err:
        plan_put(REF, {**session(), field: value}, None, ORIGIN, T0)
    assert err.value.status is OcpiStatus.INVALID_PARAMETERS


def test_invalid_put_body_raises_validation_error() -> None:
    with pytest.raises(ValidationError):
        plan_put(REF, {**session(), "kwh": -3}, None, ORIGIN, T0)


def test_patch_of_an_unknown_session_is_refused_and_writes_nothing() -> None:
    with pytest.raises(RefusedError) as err:
        plan_patch(REF, {"kwh": 1, "last_updated": "2026-03-01T09:05:00Z"}, None, ORIGIN, T0)
    assert err.value.status is OcpiStatus.INVALID_PARAMETERS


def test_patch_that_would_break_the_session_is_refused() -> None:
    with pytest.raises(ValidationError):
        plan_patch(
            REF,
            {"end_date_time": "2026-03-01T08:00:00Z", "last_updated": "2026-03-01T09:05:00Z"},
            session(),
            ORIGIN,
            T0,
        )
    with pytest.raises(RefusedError):
        plan_patch(REF, {"id": "S9", "last_updated": "2026-03-01T09:05:00Z"}, session(), ORIGIN, T0)


def test_patch_event_carries_the_fragment() -> None:
    body = {"kwh": 2.5, "last_updated": "2026-03-01T09:05:00Z"}
    planned = plan_patch(REF, body, session(), ORIGIN, T0)
    assert isinstance(planned.event, SessionPatched)
    assert planned.event.payload.patch == body


def test_find_unknown_session_is_a_404() -> None:
    with pytest.raises(RefusedError) as err:
        find(None, REF)
    assert err.value.http_status == 404


# --- the fold ----------------------------------------------------------------

P1 = period("2026-03-01T09:00:00Z", 1)
P2 = period("2026-03-01T09:15:00Z", 2)
P3 = period("2026-03-01T09:30:00Z", 3)


def _fold(*records: Any) -> Any:
    state = None
    for rec in records:
        state = evolve(state, rec.event)
    return state


def test_put_then_patches_append_and_a_put_replaces_periods() -> None:
    folded = _fold(
        put(session(charging_periods=[P1])),
        patch({"charging_periods": [P2], "kwh": 3, "last_updated": "2026-03-01T09:20:00Z"}),
        patch({"charging_periods": [P3], "last_updated": "2026-03-01T09:35:00Z"}),
    )
    assert folded["charging_periods"] == [P1, P2, P3]
    assert folded["kwh"] == 3
    replaced = evolve(folded, put(session(at="2026-03-01T09:40:00Z")).event)
    assert replaced is not None and "charging_periods" not in replaced


def test_a_patch_sent_twice_appends_its_periods_once() -> None:
    # A retry after an answer that was lost (docs/adr/0027): both PATCHes are
    # in the log, the session holds the period once.
    again = {"charging_periods": [P2], "kwh": 3, "last_updated": "2026-03-01T09:20:00Z"}
    folded = _fold(put(session(charging_periods=[P1])), patch(again), patch(again))
    assert folded["charging_periods"] == [P1, P2]
    more = {"charging_periods": [P2, P3], "last_updated": "2026-03-01T09:35:00Z"}
    assert evolve(folded, patch(more).event)["charging_periods"] == [P1, P2, P3]


def test_older_writes_change_nothing_and_patch_before_put_is_dropped() -> None:
    newer = session(at="2026-03-01T10:00:00Z", kwh=5)
    folded = _fold(
        patch({"kwh": 1, "last_updated": "2026-03-01T08:00:00Z"}),  # nothing held yet
        put(newer),
        put(session(at="2026-03-01T09:00:00Z", kwh=1)),  # older PUT
        patch({"kwh": 2, "last_updated": "2026-03-01T09:30:00Z"}),  # older PATCH
    )
    assert folded == newer


def test_view_document_is_guarded_by_the_position() -> None:
    rec = put(session(), offset=7)
    doc = apply(None, rec)
    assert doc is not None
    assert doc["_id"] == "NL/ABC/S1" and doc["session"]["id"] == "S1"
    assert apply(doc, rec) is doc  # re-delivery: unchanged
    again = apply(doc, patch({"kwh": 9, "last_updated": "2026-03-01T09:01:00Z"}, offset=7))
    assert again is doc  # same position, a different event: still applied before


# --- decide: the write path's decision, with the token it bills ------------------------

US = Party(country_code="ZZ", party_id="HUB")
OUR_CARD = {
    "country_code": "zz",
    "party_id": "hub",
    "uid": "OUR-CARD",
    "type": "RFID",
    "contract_id": "ZZ-HUB-C1",
}
ISSUED = TokenState(token=token("OUR-CARD", country_code="ZZ", party_id="HUB"))


def test_decide_records_a_put_and_says_whether_it_created_the_session() -> None:
    command = put_session(REF, session(cdr_token=OUR_CARD), ORIGIN)
    decided = decide(None, command, T0, Billing(US, ISSUED))
    [event] = decided.events
    assert isinstance(event, SessionPut) and decided.answer is True
    assert decide(session(), command, T0).answer is False


@pytest.mark.parametrize(
    ("named", "held", "status"),
    [
        (
            {**OUR_CARD, "country_code": "DE", "party_id": "MSP"},
            ISSUED,
            OcpiStatus.INVALID_PARAMETERS,
        ),
        (OUR_CARD, None, OcpiStatus.UNKNOWN_TOKEN),
        (OUR_CARD, TokenState(), OcpiStatus.UNKNOWN_TOKEN),  # a state without a Token
    ],
)
def test_a_session_must_bill_a_token_we_issued(
    named: dict[str, Any], held: TokenState | None, status: OcpiStatus
) -> None:
    command = put_session(REF, session(cdr_token=named), ORIGIN)
    with pytest.raises(RefusedError) as err:
        decide(None, command, T0, Billing(US, held))
    assert err.value.status is status


def test_the_token_is_checked_after_the_session_itself() -> None:
    # A PATCH of a session we do not hold is refused as such, whatever it bills.
    body = {"cdr_token": OUR_CARD, "last_updated": "2026-03-01T09:05:00Z"}
    with pytest.raises(RefusedError) as err:
        decide(None, patch_session(REF, body, ORIGIN), T0, Billing(US, None))
    assert "PUT the whole session first" in err.value.message


def test_the_token_a_write_names() -> None:
    named = billed_token(put_session(REF, session(cdr_token=OUR_CARD), ORIGIN))
    assert named is not None and named.key == "ZZ/HUB/OUR-CARD/RFID"
    plain = patch_session(REF, {"kwh": 1, "last_updated": "2026-03-01T09:05:00Z"}, ORIGIN)
    assert billed_token(plain) is None
    changed = {"cdr_token": OUR_CARD, "last_updated": "2026-03-01T09:05:00Z"}
    named = billed_token(patch_session(REF, changed, ORIGIN))
    assert named is not None and named.key == "ZZ/HUB/OUR-CARD/RFID"


def test_the_slice_stores_the_session_it_folds() -> None:
    folded = SLICE.fold(None, [put(session(charging_periods=[P1])).event])
    assert folded is not None
    assert SLICE.load(SLICE.dump(folded)) == folded
