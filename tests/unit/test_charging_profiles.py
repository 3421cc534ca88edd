"""Charging profiles as CPO (docs/adr/0043), the pure parts: the Receiver's
decision, the one result (charger's answer or deadline), the OCPP 1.6
mapping both ways and the bodies POSTed to the Sender."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from processors import charging_profile_results as results
from processors.charging_profile_callbacks import PROFILE_CALLBACKS, callback_body
from producers import sent_charging_profiles as sent
from producers.charging_profiles import (
    ProfileRequest,
    active_profile_of,
    decide,
    result_of,
    to_ocpp_tx_profile,
)
from producers.sent_commands import CommandTarget
from schemas.events import (
    ChargerProfileAnswered,
    ChargingProfileRequestAccepted,
    ChargingProfileRequestDeclined,
    ChargingProfileResultDecided,
    Party,
    derived_event_id,
    parse_event,
    serialize_event,
)
from schemas.events.charging_profiles import ChargerProfileAnsweredPayload
from schemas.ocpi.charging_profiles import (
    ChargingProfile,
    ChargingProfileResponse,
    ChargingProfileResultType,
    ProfileAction,
    SetChargingProfile,
)
from schemas.topics import CHARGING_PROFILES, topic_for
from tests.unit.received_command_facts import facts, session

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
URL = "https://emsp.example.com/ocpi/emsp/2.2.1/chargingprofiles/result/1"
PROFILE = {
    "charging_rate_unit": "A",
    "min_charging_rate": 6.04,
    "charging_profile_period": [
        {"start_period": 0, "limit": 16},
        {"start_period": 900, "limit": 10.25},
    ],
}


def _request(action: ProfileAction = ProfileAction.SET, **fields: Any) -> ProfileRequest:
    base: dict[str, Any] = {
        "action": action,
        "session_id": "S1",
        "response_url": URL,
        "facts": facts(location=None, session=session()),
        "timeout_s": 30,
        "charging_profile": ChargingProfile.model_validate(PROFILE)
        if action is ProfileAction.SET
        else None,
        "duration": 900 if action is ProfileAction.GET else None,
    }
    return ProfileRequest(**{**base, **fields})


def test_a_profile_for_our_active_session_is_accepted_with_the_deadline_armed() -> None:
    decision = decide(None, _request(), T0)
    assert decision.answer.model_dump() == {"result": "ACCEPTED", "timeout": 30}
    [event] = decision.events
    assert isinstance(event, ChargingProfileRequestAccepted)
    p = event.payload
    assert (p.action, p.session_id, p.deadline, p.response_url) == (
        ProfileAction.SET,
        "S1",
        T0 + timedelta(seconds=30),
        URL,
    )
    assert (p.target.charge_point_id, p.target.ocpp_connector_id) == ("CP1", 1)
    assert p.charging_profile == PROFILE
    assert event.aggregate_key == "c0ffee" == p.request_id
    assert topic_for(event.event_type) is CHARGING_PROFILES
    # The event round-trips through its contract form.
    assert parse_event(serialize_event(event)) == event


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"facts": facts(location=None, session=None)}, "UNKNOWN_SESSION"),
        (
            {"facts": facts(location=None, session=session(country_code="NL", party_id="ABC"))},
            "UNKNOWN_SESSION",
        ),
        (
            {
                "facts": facts(
                    location=None,
                    session=session(cdr_token={"country_code": "DE", "party_id": "XYZ"}),
                )
            },
            "REJECTED",
        ),
        ({"facts": facts(location=None, session=session("COMPLETED"))}, "REJECTED"),
        ({"facts": facts(location=None, session=session(), present=frozenset())}, "REJECTED"),
        ({"facts": facts(location=None, session=session(), charge_points=())}, "NOT_SUPPORTED"),
        ({"too_often": True}, "TOO_OFTEN"),
    ],
)
def test_what_cannot_reach_the_charger_is_declined_and_recorded(
    fields: dict[str, Any], expected: str
) -> None:
    decision = decide(None, _request(ProfileAction.GET, **fields), T0)
    assert decision.answer.model_dump() == {"result": expected, "timeout": 0}
    [event] = decision.events
    assert isinstance(event, ChargingProfileRequestDeclined)
    assert event.payload.result.value == expected
    assert event.payload.action is ProfileAction.GET


def test_set_charging_profile_body_keeps_unknown_fields_and_refuses_bad_ones() -> None:
    body = {"charging_profile": {**PROFILE, "x_vendor": 1}, "response_url": URL}
    assert SetChargingProfile.model_validate(body).charging_profile.model_dump()["x_vendor"] == 1
    with pytest.raises(ValidationError):
        SetChargingProfile.model_validate({"charging_profile": PROFILE, "response_url": "ftp://x"})
    with pytest.raises(ValidationError):
        SetChargingProfile.model_validate(
            {"charging_profile": {"charging_rate_unit": "kW"}, "response_url": URL}
        )


# --- the one result --------------------------------------------------------------


def _accepted(action: ProfileAction = ProfileAction.SET) -> ChargingProfileRequestAccepted:
    event = decide(None, _request(action), T0).events[0]
    assert isinstance(event, ChargingProfileRequestAccepted)
    return event


def _answer(
    accepted: ChargingProfileRequestAccepted,
    result: ChargingProfileResultType,
    profile: dict[str, Any] | None = None,
) -> ChargerProfileAnswered:
    return ChargerProfileAnswered(
        event_id=uuid.uuid4(),
        aggregate_key=accepted.aggregate_key,
        occurred_at=T0,
        recorded_at=T0,
        source=accepted.source,
        correlation_id="gw",
        payload=ChargerProfileAnsweredPayload(
            request_id=accepted.payload.request_id,
            charge_point_id="CP1",
            result=result,
            charger_status="Accepted",
            active_profile=profile,
            at=T0 + timedelta(seconds=2),
        ),
    )


def test_the_charger_answer_decides_once_and_the_deadline_after_it_decides_nothing() -> None:
    accepted = _accepted()
    pending = results.evolve(None, accepted)
    assert results.decide(None, accepted, T0) is None
    decided = results.decide(pending, _answer(accepted, ChargingProfileResultType.ACCEPTED), T0)
    assert isinstance(decided, ChargingProfileResultDecided)
    assert decided.event_id == derived_event_id(accepted.event_id, "result")
    assert (decided.payload.result, decided.payload.decided_by) == ("ACCEPTED", "charger")
    after = results.evolve(pending, _answer(accepted, ChargingProfileResultType.ACCEPTED))
    assert after is None
    [late] = results.overdue([pending] if pending else [], T0 + timedelta(seconds=31))
    assert results.decide(after, late, T0 + timedelta(seconds=31)) is None


def test_the_deadline_decides_unknown_once_and_restating_it_keeps_its_id() -> None:
    accepted = _accepted()
    pending = results.evolve(None, accepted)
    assert pending is not None
    assert results.overdue([pending], T0 + timedelta(seconds=29)) == []
    [first] = results.overdue([pending], T0 + timedelta(seconds=30))
    [again] = results.overdue([pending], T0 + timedelta(seconds=45))
    assert first.event_id == again.event_id
    decided = results.decide(pending, first, T0 + timedelta(seconds=30))
    assert decided is not None
    assert (decided.payload.result, decided.payload.decided_by) == ("UNKNOWN", "deadline")
    assert results.evolve(pending, first) is None


def test_the_bodies_posted_to_the_sender_follow_the_action() -> None:
    active = {"start_date_time": "2026-06-01T12:00:00Z", "charging_profile": PROFILE}
    get = _accepted(ProfileAction.GET)
    decided = results.decide(
        results.evolve(None, get), _answer(get, ChargingProfileResultType.ACCEPTED, active), T0
    )
    assert decided is not None
    assert callback_body(decided) == {"result": "ACCEPTED", "profile": active}
    assert PROFILE_CALLBACKS.url(decided, None) == URL  # type: ignore[arg-type]
    clear = _accepted(ProfileAction.CLEAR)
    decided = results.decide(
        results.evolve(None, clear), _answer(clear, ChargingProfileResultType.UNKNOWN), T0
    )
    assert decided is not None
    assert callback_body(decided) == {"result": "UNKNOWN"}
    [deadline] = results.overdue([results.evolve(None, get)], T0 + timedelta(minutes=1))  # type: ignore[list-item]
    decided = results.decide(results.evolve(None, get), deadline, T0 + timedelta(minutes=1))
    assert decided is not None
    assert callback_body(decided) == {"result": "UNKNOWN"}


# --- OCPP 1.6 ---------------------------------------------------------------------


def test_an_ocpi_profile_becomes_a_relative_tx_profile_on_the_transaction() -> None:
    ocpp = to_ocpp_tx_profile(PROFILE, 42, 1)
    assert ocpp == {
        "charging_profile_id": 42,
        "transaction_id": 42,
        "stack_level": 1,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {
            "charging_rate_unit": "A",
            # OCPP takes one decimal.
            "min_charging_rate": 6.0,
            "charging_schedule_period": [
                {"start_period": 0, "limit": 16.0},
                {"start_period": 900, "limit": 10.2},
            ],
        },
    }
    absolute = to_ocpp_tx_profile(
        {**PROFILE, "start_date_time": "2026-06-01T14:00:00Z", "duration": 3600,
         "charging_rate_unit": "W"},
        7,
        3,
    )  # fmt: skip
    assert absolute["charging_profile_kind"] == "Absolute"
    assert absolute["charging_schedule"]["start_schedule"] == "2026-06-01T14:00:00Z"
    assert (absolute["charging_schedule"]["duration"], absolute["stack_level"]) == (3600, 3)
    assert absolute["charging_schedule"]["charging_rate_unit"] == "W"


def test_a_composite_schedule_becomes_an_active_charging_profile() -> None:
    schedule = {
        "charging_rate_unit": "W",
        "duration": 900,
        "charging_schedule_period": [{"start_period": 0, "limit": 11000, "number_phases": 3}],
    }
    assert active_profile_of("2026-06-01T12:00:05Z", schedule, T0) == {
        "start_date_time": "2026-06-01T12:00:05Z",
        "charging_profile": {
            "charging_rate_unit": "W",
            "duration": 900,
            "charging_profile_period": [{"start_period": 0, "limit": 11000.0}],
        },
    }
    assert active_profile_of(None, schedule, T0)["start_date_time"] == "2026-06-01T12:00:00Z"  # type: ignore[index]
    assert active_profile_of(None, None, T0) is None


def test_the_chargers_words_map_to_ocpis_three() -> None:
    assert [result_of(s) for s in ("Accepted", "Rejected", "NotSupported", "Unknown", None)] == [
        "ACCEPTED",
        "REJECTED",
        "REJECTED",
        "UNKNOWN",
        "REJECTED",
    ]


# --- as eMSP ----------------------------------------------------------------------


def _target() -> CommandTarget:
    return CommandTarget(
        partner_id="CPO-1",
        url="https://cpo.example.com/ocpi/2.2.1/chargingprofiles/",
        sealed_token="sealed",
        to=Party(country_code="DE", party_id="CPO"),
    )


def test_the_request_to_the_cpo_follows_the_action() -> None:
    url = sent.response_url("https://us.example.com/", ProfileAction.GET, "abc-1")
    assert url == "https://us.example.com/ocpi/emsp/2.2.1/chargingprofiles/GET/abc-1"
    # A 2.3.0 CPO posts its result to our 2.3.0 route (docs/ocpi-versions.md).
    url_230 = sent.response_url("https://us.example.com", ProfileAction.SET, "abc-2", "2.3.0")
    assert url_230 == "https://us.example.com/ocpi/emsp/2.3.0/chargingprofiles/SET/abc-2"
    base = "https://cpo.example.com/ocpi/2.2.1/chargingprofiles/S1"
    assert sent.outbound(ProfileAction.SET, _target(), "S1", url, charging_profile=PROFILE) == (
        "PUT",
        base,
        {"charging_profile": PROFILE, "response_url": url},
    )
    method, to, body = sent.outbound(ProfileAction.GET, _target(), "S1", url, duration=900)
    assert (method, body) == ("GET", None)
    assert to.startswith(f"{base}?duration=900&response_url=https%3A%2F%2Fus.example.com")
    method, to, body = sent.outbound(ProfileAction.CLEAR, _target(), "S1", url)
    assert (method, body, to.split("?")[1].split("=")[0]) == ("DELETE", None, "response_url")


def test_the_first_result_stands_and_the_status_is_judged_at_read_time() -> None:
    us = Party(country_code="ZZ", party_id="HUB")
    request = sent.plan_sent(
        request_id="r1",
        action=ProfileAction.GET,
        target=_target(),
        session_id="S1",
        url="https://us.example.com/cb",
        response=ChargingProfileResponse.model_validate({"result": "ACCEPTED", "timeout": 30}),
        us=us,
        now=T0,
        correlation_id="c",
        duration=900,
    )
    state = sent.evolve(None, request)
    assert state is not None
    assert sent.status_of(state, T0 + timedelta(seconds=29)) == "PENDING"
    assert sent.status_of(state, T0 + timedelta(seconds=30)) == "NO_RESULT_IN_TIME"
    active = {"start_date_time": "2026-06-01T12:00:00Z", "charging_profile": PROFILE}
    result = sent.plan_result(
        request_id="r1",
        action=ProfileAction.GET,
        partner_id="CPO-1",
        sender=Party(country_code="DE", party_id="CPO"),
        body={"result": "ACCEPTED", "profile": active},
        now=T0,
        correlation_id="c",
    )
    assert sent.decide_result(state, result).events == [result]
    state = sent.evolve(state, result)
    assert state is not None
    assert (sent.status_of(state, T0 + timedelta(hours=1)), state.active_profile) == (
        "ACCEPTED",
        active,
    )
    again = sent.decide_result(state, result)
    assert (again.events, again.answer) == ([], "ACCEPTED")
    # A result of the wrong kind for what was asked is refused (2001).
    with pytest.raises(ValidationError):
        sent.plan_result(
            request_id="r1",
            action=ProfileAction.GET,
            partner_id="CPO-1",
            sender=us,
            body={"result": "MAYBE"},
            now=T0,
            correlation_id="c",
        )


def test_an_active_profile_a_cpo_puts_is_kept_per_session_latest_first() -> None:
    cpo = Party(country_code="DE", party_id="CPO")
    active = {"start_date_time": "2026-06-01T12:00:00Z", "charging_profile": PROFILE}
    first = sent.plan_active(
        partner_id="CPO-1", sender=cpo, session_id="s1", body=active, now=T0, correlation_id="c"
    )
    assert first.aggregate_key == "DE/CPO/S1"
    state = sent.evolve_active(sent.evolve_active(None, first), first)
    assert state is not None and state.updates == 2
    with pytest.raises(ValidationError):
        sent.plan_active(
            partner_id="CPO-1", sender=cpo, session_id="s1", body={}, now=T0, correlation_id="c"
        )
