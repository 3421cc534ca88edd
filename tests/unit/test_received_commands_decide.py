"""``producers.received_commands``: every branch of the Commands Receiver's
judgement, pure (facts in, event or NotFound out, ``plan``); the same in
the write path's shape (``decide``); and the fold of a command's events
(``evolve``), of which the write path keeps the reservations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from producers.received_commands import (
    OFFLINE,
    SLICE,
    Facts,
    NotFound,
    ReceiveCommand,
    decide,
    evolve,
    plan,
    reservation_held,
    reservation_key,
)
from producers.write_path import RefusedError
from schemas.events import CommandAccepted, CommandDeclined, CommandResultDecided, CommandSent
from schemas.events.commands import CommandResultDecidedPayload, CommandTarget
from schemas.ocpi.commands import (
    REQUEST_MODEL,
    CommandResponse,
    CommandResponseType,
    CommandResultType,
    CommandType,
)
from schemas.ocpi.types import DisplayText
from tests.token_objects import token
from tests.unit.received_command_facts import (
    CALLER,
    EMSP,
    URL,
    charge_point,
    facts,
    session,
    start_body,
)
from tests.unit.test_command_results import accepted, answered, deadline

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _decide(command: CommandType, body: dict[str, Any], f: Facts) -> Any:
    request = REQUEST_MODEL[command].model_validate(body)
    return plan(command, request, f, NOW, 30)  # type: ignore[arg-type]


def _declined(decision: Any, result: str) -> CommandDeclined:
    assert isinstance(decision, CommandDeclined), decision
    assert decision.payload.result.value == result
    return decision


def test_start_session_is_accepted_with_the_deadline_armed_now() -> None:
    decision = _decide(CommandType.START_SESSION, start_body(), facts())
    assert isinstance(decision, CommandAccepted)
    p = decision.payload
    assert (p.timeout_s, p.deadline) == (30, NOW + timedelta(seconds=30))
    assert p.target == CommandTarget(
        country_code="ZZ",
        party_id="HUB",
        location_id="LOC1",
        evse_uid="EVSE1",
        charge_point_id="CP1",
        ocpp_connector_id=1,
    )
    assert (p.command_id, decision.aggregate_key, p.partner_id) == ("c0ffee", "c0ffee", "abc")
    assert p.sender == EMSP and p.response_url == URL
    assert p.request["token"]["uid"] == "04A1B2C3"


def test_start_session_on_a_named_connector_targets_its_ocpp_connector() -> None:
    body = start_body(evse_uid="evse2", connector_id="2")  # ids are case-insensitive
    decision = _decide(CommandType.START_SESSION, body, facts())
    assert isinstance(decision, CommandAccepted)
    assert decision.payload.target.ocpp_connector_id == 3


def test_without_evse_a_present_charge_point_of_the_location_is_picked() -> None:
    f = facts(
        charge_points=(
            charge_point("CP0"),
            charge_point("CP1"),
            charge_point("CPX", registered=False),
        ),
        present=frozenset({"CP1", "CPX"}),
    )
    decision = _decide(CommandType.START_SESSION, start_body(evse_uid=None), f)
    assert isinstance(decision, CommandAccepted)
    t = decision.payload.target
    assert (t.charge_point_id, t.evse_uid, t.ocpp_connector_id) == ("CP1", None, None)


@pytest.mark.parametrize(
    ("body", "f"),
    [
        (start_body(location_id="NOPE"), facts(location=None)),
        (start_body(evse_uid="E404"), facts()),
        (start_body(evse_uid="OLD"), facts()),  # a REMOVED EVSE
        (start_body(connector_id="9"), facts()),
    ],
)
def test_an_unknown_location_evse_or_connector_is_not_found(body: dict[str, Any], f: Facts) -> None:
    assert isinstance(_decide(CommandType.START_SESSION, body, f), NotFound)


def test_a_location_of_another_party_is_not_found() -> None:
    from tests.ocpi_objects import location

    f = facts(location=location("LOC1", country_code="NL", party_id="ABC"))
    assert isinstance(_decide(CommandType.START_SESSION, start_body(), f), NotFound)


def test_no_registered_charge_point_is_not_supported() -> None:
    for cps in [(), (charge_point(registered=False),)]:
        decision = _decide(CommandType.START_SESSION, start_body(), facts(charge_points=cps))
        _declined(decision, "NOT_SUPPORTED")
    decision = _decide(
        CommandType.START_SESSION, start_body(evse_uid=None), facts(charge_points=())
    )
    _declined(decision, "NOT_SUPPORTED")


def test_a_registered_charge_point_that_is_not_connected_is_rejected_as_offline() -> None:
    decision = _declined(
        _decide(CommandType.START_SESSION, start_body(), facts(present=frozenset())), "REJECTED"
    )
    assert decision.payload.message == OFFLINE
    assert decision.payload.command_id == "c0ffee"


def test_a_token_of_another_emsp_is_rejected() -> None:
    body = start_body(token=token(country_code="DE", party_id="XYZ"))
    _declined(_decide(CommandType.START_SESSION, body, facts()), "REJECTED")
    _declined(
        _decide(
            CommandType.RESERVE_NOW,
            {**body, "expiry_date": "2026-06-01T13:00:00Z", "reservation_id": "R1"},
            facts(ocpp_reservation_id=7),
        ),
        "REJECTED",
    )


def test_connector_required_capability_without_connector_is_rejected() -> None:
    decision = _decide(CommandType.START_SESSION, start_body(evse_uid="EVSE2"), facts())
    _declined(decision, "REJECTED")


@pytest.mark.parametrize(
    "body",
    [
        start_body(response_url="ftp://emsp.example.com/cb"),
        start_body(response_url="file:///etc/passwd"),
        start_body(token={"uid": "X"}),
        {k: v for k, v in start_body().items() if k != "location_id"},
    ],
)
def test_bad_bodies_do_not_validate(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        REQUEST_MODEL[CommandType.START_SESSION].model_validate(body)


# --- STOP_SESSION -------------------------------------------------------------


def _stop(f: Facts) -> Any:
    return _decide(CommandType.STOP_SESSION, {"response_url": URL, "session_id": "S1"}, f)


def test_stop_session_targets_the_session_charger() -> None:
    decision = _stop(facts(location=None, session=session()))
    assert isinstance(decision, CommandAccepted)
    t = decision.payload.target
    assert (t.session_id, t.charge_point_id, t.ocpp_connector_id, t.evse_uid) == (
        "S1",
        "CP1",
        1,
        "EVSE1",
    )


def test_stop_of_an_unknown_session_is_unknown_session() -> None:
    _declined(_stop(facts(session=None)), "UNKNOWN_SESSION")
    # A session of another CPO in our view is not one of ours.
    _declined(_stop(facts(session=session(country_code="NL", party_id="ABC"))), "UNKNOWN_SESSION")


def test_stop_of_another_emsps_session_or_a_finished_one_is_rejected() -> None:
    other = session(cdr_token={"country_code": "DE", "party_id": "XYZ", "uid": "1"})
    _declined(_stop(facts(session=other)), "REJECTED")
    _declined(_stop(facts(session=session("COMPLETED"))), "REJECTED")
    _declined(_stop(facts(session=session(), present=frozenset())), "REJECTED")


# --- reservations and unlock -------------------------------------------------


def _reserve_body(**fields: Any) -> dict[str, Any]:
    return {
        "response_url": URL,
        "token": token(),
        "expiry_date": "2026-06-01T13:00:00Z",
        "reservation_id": "R1",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        **fields,
    }


def test_reserve_now_carries_the_allocated_ocpp_reservation_id() -> None:
    decision = _decide(CommandType.RESERVE_NOW, _reserve_body(), facts(ocpp_reservation_id=7))
    assert isinstance(decision, CommandAccepted)
    assert decision.payload.target.ocpp_reservation_id == 7
    assert reservation_key(CALLER.party, "r1") == "NL/ABD/R1"


def test_cancel_reservation_reuses_the_reservation_target_or_rejects() -> None:
    held = CommandTarget(
        country_code="ZZ",
        party_id="HUB",
        location_id="LOC1",
        evse_uid="EVSE1",
        charge_point_id="CP1",
        ocpp_connector_id=1,
        ocpp_reservation_id=7,
    )
    body = {"response_url": URL, "reservation_id": "R1"}
    decision = _decide(CommandType.CANCEL_RESERVATION, body, facts(reservation=held))
    assert isinstance(decision, CommandAccepted) and decision.payload.target == held
    unknown = _declined(_decide(CommandType.CANCEL_RESERVATION, body, facts()), "REJECTED")
    assert "unknown reservation" in (unknown.payload.message or "")
    offline = facts(reservation=held, present=frozenset())
    _declined(_decide(CommandType.CANCEL_RESERVATION, body, offline), "REJECTED")


def test_unlock_connector_targets_the_connector() -> None:
    body = {"response_url": URL, "location_id": "LOC1", "evse_uid": "EVSE2", "connector_id": "2"}
    decision = _decide(CommandType.UNLOCK_CONNECTOR, body, facts())
    assert isinstance(decision, CommandAccepted)
    assert decision.payload.target.ocpp_connector_id == 3
    missing = {**body, "connector_id": "7"}
    assert isinstance(_decide(CommandType.UNLOCK_CONNECTOR, missing, facts()), NotFound)


# --- the write path's shape: decide ----------------------------------------------


def _received(command: CommandType, body: dict[str, Any], f: Facts) -> ReceiveCommand:
    request = REQUEST_MODEL[command].model_validate(body)
    return ReceiveCommand(command, request, f, 30)  # type: ignore[arg-type]


def test_decide_records_the_acceptance_and_answers_accepted_with_our_timeout() -> None:
    decision = decide(None, _received(CommandType.START_SESSION, start_body(), facts()), NOW)
    [event] = decision.events
    assert isinstance(event, CommandAccepted) and event.aggregate_key == "c0ffee"
    assert decision.answer == CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)


def test_decide_records_a_refusal_and_answers_it_with_the_reason() -> None:
    offline = facts(present=frozenset())
    decision = decide(None, _received(CommandType.START_SESSION, start_body(), offline), NOW)
    [event] = decision.events
    assert isinstance(event, CommandDeclined)
    assert decision.answer == CommandResponse(
        result=CommandResponseType.REJECTED,
        timeout=0,
        message=[DisplayText(language="en", text=OFFLINE)],
    )


def test_decide_refuses_a_place_that_is_not_ours_with_404_2003() -> None:
    received = _received(CommandType.START_SESSION, start_body(evse_uid="E404"), facts())
    with pytest.raises(RefusedError) as refused:
        decide(None, received, NOW)
    assert (refused.value.status, refused.value.http_status) == (2003, 404)
    assert "E404" in refused.value.message


# --- the fold ---------------------------------------------------------------------


def _reserve(command_id: str = "r-1", **fields: Any) -> Any:
    f = facts(command_id=command_id, ocpp_reservation_id=7)
    event = _decide(CommandType.RESERVE_NOW, _reserve_body(**fields), f)
    assert isinstance(event, CommandAccepted | CommandDeclined)
    return event


def test_evolve_folds_decision_answer_deadline_and_result() -> None:
    acc = accepted("C1")
    decided = CommandResultDecided(
        event_id=uuid.uuid4(),
        aggregate_key="C1",
        occurred_at=NOW,
        recorded_at=NOW,
        source=acc.source,
        correlation_id="corr",
        payload=CommandResultDecidedPayload(
            command_id="C1",
            command=CommandType.START_SESSION,
            partner_id="abc",
            response_url=acc.payload.response_url,
            result=CommandResultType.ACCEPTED,
            decided_by="charger",
            at=NOW + timedelta(seconds=3),
        ),
    )
    first_deadline = deadline("C1")
    later_deadline = first_deadline.model_copy(
        update={
            "payload": first_deadline.payload.model_copy(
                update={"at": first_deadline.payload.at + timedelta(seconds=5)}
            )
        }
    )
    state = None
    for event in (acc, answered("C1"), first_deadline, later_deadline, decided):
        state = evolve(state, event)
    assert state is not None
    assert (state.command, state.partner_id, state.response_url) == (
        CommandType.START_SESSION,
        "abc",
        acc.payload.response_url,
    )
    assert state.target == acc.payload.target and state.deadline == acc.payload.deadline
    assert state.response is not None and state.response.timeout == 30
    assert state.charger_answer is not None and state.charger_answer.charger_status == "Accepted"
    assert state.deadline_passed_at == first_deadline.payload.at  # the first one counts
    assert (state.result, state.decided_by) == (CommandResultType.ACCEPTED, "charger")
    assert state.reservation_key is None
    # Sent commands share the topic: not this fold's.
    sent = CommandSent.model_construct(aggregate_key="C1")
    assert evolve(state, sent) is state


def test_a_declined_command_keeps_why_and_has_no_target() -> None:
    declined = _reserve(token=token(country_code="DE", party_id="XYZ"))
    assert isinstance(declined, CommandDeclined)
    state = evolve(None, declined)
    assert state is not None and state.target is None
    assert state.response is not None and state.response.result is CommandResponseType.REJECTED
    assert state.response.message and "not one of the sender's" in state.response.message
    assert state.reservation_key == "NL/ABD/R1"


def test_the_write_path_holds_accepted_reservations_only() -> None:
    held = SLICE.fold(None, [_reserve()])
    assert held is not None and reservation_held(held) is not None
    assert reservation_held(held) == held.target
    assert held.target is not None and held.target.ocpp_reservation_id == 7
    assert SLICE.load(SLICE.dump(held)) == held
    # Its charger's answer keeps it held (and folded).
    answered_too = SLICE.fold(held, [answered("r-1")])
    assert answered_too is not None and answered_too.charger_answer is not None
    # Every other command leaves no state in the decision store.
    declined = _reserve(token=token(country_code="DE", party_id="XYZ"))
    start = _decide(CommandType.START_SESSION, start_body(), facts())
    for event in (declined, start, accepted("C2"), answered("C3")):
        assert SLICE.fold(None, [event]) is None
