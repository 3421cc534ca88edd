"""Pure decisions of the Tokens slice: PUT/PATCH planning and ``decide``,
the fold (with staleness, docs/adr/0004), the eMSP's real-time
``authorize`` and the view's position-guarded apply."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from producers.tokens import (
    SLICE,
    Origin,
    PatchToken,
    PutToken,
    SetPolicy,
    TokenState,
    authorize,
    decide,
    decide_authorization,
    evolve,
    find,
    held,
    plan_patch,
    plan_policy,
    plan_put,
)
from producers.write_path import RefusedError
from projections.mongo.tokens import apply
from projections.position import Record
from schemas.events import Party, TokenPatched, TokenPut, parse_event, serialize_event
from schemas.events.tokens import TokenPolicy, TokenRef, token_key
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tokens import AllowedType, LocationReferences
from schemas.ocpi.types import TokenType
from tests.token_objects import token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REF = TokenRef(country_code="NL", party_id="ABD", uid="04a1b2c3", type=TokenType.RFID)
ORIGIN = Origin(Party(country_code="NL", party_id="ABD"), "corr-1")


def _held(**fields: Any) -> TokenState:
    return TokenState(token=token(**fields))


def test_the_key_is_party_uid_and_type_upper_cased() -> None:
    assert REF.key == "NL/ABD/04A1B2C3/RFID"
    assert token_key("nl", "abd", "x1", "APP_USER") == "NL/ABD/X1/APP_USER"


def test_put_records_the_token_and_says_whether_it_is_new() -> None:
    planned = plan_put(REF, token(), None, ORIGIN, NOW)
    assert isinstance(planned.event, TokenPut) and planned.created
    assert planned.event.aggregate_key == "NL/ABD/04A1B2C3/RFID"
    assert planned.event.payload.token == token()
    assert parse_event(serialize_event(planned.event)) == planned.event
    assert not plan_put(REF, token(), _held(), ORIGIN, NOW).created


@pytest.mark.parametrize(
    ("field", "value"),
    [("uid", "OTHER"), ("type", "APP_USER"), ("party_id", "XYZ"), ("country_code", "BE")],
)
def test_put_body_must_name_the_token_of_the_url(field: str, value: str) -> None:
    with pytest.raises(RefusedError) as err:
        plan_put(REF, {**token(), field: value}, None, ORIGIN, NOW)
    assert err.value.status is OcpiStatus.INVALID_PARAMETERS


def test_put_of_an_invalid_token_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        plan_put(REF, {**token(), "whitelist": "SOMETIMES"}, None, ORIGIN, NOW)


def test_patch_of_an_unknown_token_is_2004_and_identifiers_cannot_change() -> None:
    body = {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}
    with pytest.raises(RefusedError) as err:
        plan_patch(REF, body, None, ORIGIN, NOW)
    assert err.value.status is OcpiStatus.UNKNOWN_TOKEN
    with pytest.raises(RefusedError) as err:
        plan_patch(REF, {**body, "uid": "SOMEONE-ELSE"}, _held(), ORIGIN, NOW)
    assert err.value.status is OcpiStatus.INVALID_PARAMETERS
    planned = plan_patch(REF, {**body, "uid": "04A1B2C3"}, _held(), ORIGIN, NOW)
    assert isinstance(planned.event, TokenPatched)


def test_a_patch_that_would_leave_an_invalid_token_is_refused() -> None:
    with pytest.raises(ValidationError):
        plan_patch(
            REF, {"contract_id": None, "last_updated": "2026-03-02T00:00:00Z"}, _held(), ORIGIN, NOW
        )


def test_the_fold_applies_newer_writes_and_ignores_older_ones() -> None:
    put = plan_put(REF, token(), None, ORIGIN, NOW).event
    state = evolve(None, put)  # type: ignore[arg-type]
    newer = plan_patch(
        REF, {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}, state, ORIGIN, NOW
    ).event
    state = evolve(state, newer)  # type: ignore[arg-type]
    assert state.token is not None and state.token["valid"] is False
    older_put = plan_put(REF, token(at="2026-02-01T00:00:00Z"), state, ORIGIN, NOW).event
    assert evolve(state, older_put) == state  # type: ignore[arg-type]
    older_patch = plan_patch(
        REF, {"valid": True, "last_updated": "2026-03-01T10:00:00Z"}, state, ORIGIN, NOW
    ).event
    assert evolve(state, older_patch) == state  # type: ignore[arg-type]
    same_time = plan_patch(
        REF, {"issuer": "Renamed", "last_updated": "2026-03-02T00:00:00Z"}, state, ORIGIN, NOW
    ).event
    assert evolve(state, same_time).token["issuer"] == "Renamed"  # type: ignore[arg-type,index]


def test_decide_records_each_write_and_says_whether_a_put_created_the_token() -> None:
    put = decide(None, PutToken(REF, token(), ORIGIN), NOW)
    assert put.answer is True and isinstance(put.events[0], TokenPut)
    state = SLICE.fold(None, put.events)
    assert state is not None and SLICE.load(SLICE.dump(state)) == state
    assert decide(state, PutToken(REF, token(), ORIGIN), NOW).answer is False
    body = {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}
    patched = decide(state, PatchToken(REF, body, ORIGIN), NOW)
    assert patched.answer is False and isinstance(patched.events[0], TokenPatched)
    policy = decide(state, SetPolicy(REF, {"state": "NO_CREDIT"}, ORIGIN), NOW)
    after = SLICE.fold(state, policy.events)
    assert after is not None and after.policy == TokenPolicy(state=AllowedType.NO_CREDIT)
    with pytest.raises(RefusedError):
        decide(None, PatchToken(REF, body, ORIGIN), NOW)


def test_the_slice_holds_nothing_for_events_of_a_token_never_put() -> None:
    info = authorize(_held(), None, NOW)
    decided = decide_authorization(REF, info, None, ORIGIN, NOW)
    assert SLICE.fold(None, [decided]) is None


def test_find_answers_404_2004_for_a_token_we_do_not_hold() -> None:
    with pytest.raises(RefusedError) as err:
        find(TokenState(), REF)
    assert (err.value.status, err.value.http_status) == (OcpiStatus.UNKNOWN_TOKEN, 404)
    assert find(_held(), REF)["uid"] == "04A1B2C3"
    with pytest.raises(RefusedError) as err:
        held(None, REF)
    assert (err.value.status, err.value.http_status) == (OcpiStatus.UNKNOWN_TOKEN, 404)
    assert held(_held(), REF) == _held()


# --- authorize: the eMSP's rule table ----------------------------------------

LOC = LocationReferences(location_id="LOC1", evse_uids=["E1"])
OTHER = LocationReferences(location_id="LOC9")


@pytest.mark.parametrize(
    ("valid", "policy", "location", "expected"),
    [
        (True, None, None, AllowedType.ALLOWED),
        (True, None, LOC, AllowedType.ALLOWED),
        (False, None, LOC, AllowedType.BLOCKED),
        (False, TokenPolicy(state=AllowedType.NO_CREDIT), LOC, AllowedType.BLOCKED),
        (True, TokenPolicy(state=AllowedType.BLOCKED), LOC, AllowedType.BLOCKED),
        (True, TokenPolicy(state=AllowedType.NO_CREDIT), LOC, AllowedType.NO_CREDIT),
        (True, TokenPolicy(state=AllowedType.EXPIRED), None, AllowedType.EXPIRED),
        (True, TokenPolicy(expires_at=NOW - timedelta(seconds=1)), LOC, AllowedType.EXPIRED),
        (True, TokenPolicy(expires_at=NOW + timedelta(days=1)), LOC, AllowedType.ALLOWED),
        (True, TokenPolicy(location_ids=("loc1",)), LOC, AllowedType.ALLOWED),
        (True, TokenPolicy(location_ids=("LOC1",)), OTHER, AllowedType.NOT_ALLOWED),
    ],
)
def test_authorize(
    valid: bool,
    policy: TokenPolicy | None,
    location: LocationReferences | None,
    expected: AllowedType,
) -> None:
    state = TokenState(token=token(valid=valid), policy=policy)
    info = authorize(state, location, NOW)
    assert info.allowed is expected
    assert info.token.uid == "04A1B2C3"
    assert info.authorization_reference and len(info.authorization_reference) <= 36
    # Only an allowed answer names the location (and so the EVSEs allowed).
    assert info.location == (location if expected is AllowedType.ALLOWED else None)


def test_authorize_hands_out_a_new_reference_every_time() -> None:
    refs = {authorize(_held(), LOC, NOW).authorization_reference for _ in range(50)}
    assert len(refs) == 50


def test_a_token_restricted_to_some_locations_needs_location_references() -> None:
    state = TokenState(token=token(), policy=TokenPolicy(location_ids=("LOC1",)))
    with pytest.raises(RefusedError) as err:
        authorize(state, None, NOW)
    assert err.value.status is OcpiStatus.NOT_ENOUGH_INFORMATION


def test_a_policy_cannot_say_not_allowed_without_a_location() -> None:
    with pytest.raises(ValidationError):
        TokenPolicy(state=AllowedType.NOT_ALLOWED)


def test_the_decision_event_carries_the_reference_and_both_locations() -> None:
    info = authorize(TokenState(token=token(valid=False)), LOC, NOW, reference="REF-1")
    event = decide_authorization(REF, info, LOC, ORIGIN, NOW, requested_by="cpo-1")
    p = event.payload
    assert (p.allowed, p.authorization_reference, p.requested, p.location) == (
        AllowedType.BLOCKED,
        "REF-1",
        LOC,
        None,
    )
    assert event.aggregate_key == REF.key
    assert parse_event(serialize_event(event)) == event


def test_policy_needs_an_existing_token() -> None:
    with pytest.raises(RefusedError):
        plan_policy(REF, {"state": "NO_CREDIT"}, None, ORIGIN, NOW)
    state = evolve(_held(), plan_policy(REF, {"state": "NO_CREDIT"}, _held(), ORIGIN, NOW).event)  # type: ignore[arg-type]
    assert state.policy == TokenPolicy(state=AllowedType.NO_CREDIT)


# --- the view's apply: idempotent, position-guarded ---------------------------


def _rec(offset: int, event: Any) -> Record[Any]:
    return Record("ocpi.tokens.v1", 2, offset, event)


def test_the_view_applies_each_position_once() -> None:
    put = plan_put(REF, token(), None, ORIGIN, NOW).event
    doc = apply(None, _rec(5, put))
    assert doc is not None
    assert (doc["_id"], doc["uid"], doc["type"], doc["token"]) == (
        "NL/ABD/04A1B2C3/RFID",
        "04A1B2C3",
        "RFID",
        token(),
    )
    assert doc["_positions"] == {"ocpi_tokens_v1@2": 5}
    patch = plan_patch(
        REF, {"valid": False, "last_updated": "2026-03-02T00:00:00Z"}, _held(), ORIGIN, NOW
    ).event
    patched = apply(doc, _rec(6, patch))
    assert patched is not None and patched["token"]["valid"] is False
    assert apply(patched, _rec(6, patch)) is patched  # re-delivery changes nothing
    assert apply(patched, _rec(5, put)) is patched


def test_the_view_moves_past_authorization_decisions_without_changing_the_token() -> None:
    # The write path's position of a token may be that of a decision (after
    # a rebuild of its states): a read waiting for it must find the view there.
    put = plan_put(REF, token(), None, ORIGIN, NOW).event
    doc = apply(None, _rec(5, put))
    assert doc is not None
    info = authorize(_held(), LOC, NOW)
    decided = apply(doc, _rec(9, decide_authorization(REF, info, LOC, ORIGIN, NOW)))
    assert decided is not None and decided["_positions"] == {"ocpi_tokens_v1@2": 9}
    assert (decided["state"], decided["token"]) == (doc["state"], doc["token"])
    # No document for a token never put.
    assert apply(None, _rec(3, decide_authorization(REF, info, LOC, ORIGIN, NOW))) is None
