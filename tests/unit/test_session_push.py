"""Pushing our sessions (processors/session_push.py): what is planned for
which partner, on the lanes of processors/push.py."""

from __future__ import annotations

from ocpi_hub.settings import Settings
from processors.push import PartnerLane, PushTarget, push_targets
from processors.session_lifecycle import Lifecycle, MeterConfig, decide
from processors.session_push import SESSIONS_PUSH, plan_session
from producers.partners import PartnerState
from schemas.events import Party
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint, InterfaceRole, ModuleId
from tests.ocpi_sessions import session
from tests.unit.charger_facts import T0, meter, started
from tests.unit.session_factories import put

US = Party(country_code="ZZ", party_id="HUB")


def test_our_put_and_patch_are_planned_for_the_tokens_emsp() -> None:
    state, [first] = decide(Lifecycle(), started(0, 1000), MeterConfig(), T0)
    _, [second] = decide(state, meter(15, 2000), MeterConfig(), T0)
    put_req, patch_req = plan_session(first, US), plan_session(second, US)
    assert put_req is not None and patch_req is not None
    assert (put_req.method, patch_req.method) == ("PUT", "PATCH")
    assert put_req.path == "/ZZ/HUB/S1"
    assert put_req.audience == patch_req.audience == Party(country_code="NL", party_id="PEE")
    assert patch_req.body["charging_periods"][0]["start_date_time"] == "2026-04-01T08:00:00Z"


def test_a_partners_session_is_never_pushed() -> None:
    assert plan_session(put(session()).event, US) is None


def _partner(partner_id: str, cc: str, pid: str) -> PartnerState:
    details = BusinessDetails(name=partner_id)
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        roles=(
            CredentialsRole(
                role=Role.EMSP, business_details=details, country_code=cc, party_id=pid
            ),
        ),
        endpoints=(
            Endpoint(
                identifier=ModuleId.SESSIONS,
                role=InterfaceRole.RECEIVER,
                url=f"https://{pid.lower()}.example/sessions",
            ),
        ),
        our_token_encrypted="sealed",
    )


def test_targets_are_the_sessions_receivers_and_a_lane_skips_other_emsps() -> None:
    targets = push_targets(
        [_partner("PEE", "NL", "PEE"), _partner("OTH", "DE", "OTH")], SESSIONS_PUSH.module_id
    )
    assert targets["PEE"].url == "https://pee.example/sessions"
    assert push_targets([_partner("PEE", "NL", "PEE")]) == {}  # no Locations receiver

    _, [event] = decide(Lifecycle(), started(0, 1000), MeterConfig(), T0)

    def lane(target: PushTarget) -> PartnerLane:
        return PartnerLane(target, "token", Settings(), US, SESSIONS_PUSH)

    class Message:
        headers = [("event_type", b"SessionPut")]
        value = event.model_dump_json().encode()
        partition = 0
        offset = 0

    assert lane(targets["PEE"])._decode(Message()) is not None  # type: ignore[arg-type]
    assert lane(targets["OTH"])._decode(Message()) is None  # type: ignore[arg-type]
    assert lane(targets["PEE"]).group_id == "ocpi-hub-push-sessions-PEE"


def test_our_session_goes_to_a_211_emsp_with_the_location_from_our_view() -> None:
    """A push to a 2.1.1 eMSP (docs/adr/0045 §7): the lane reads our Location
    from the location view and hands it to the adapter; the PUT is a 2.1.1
    Session embedding it with the one EVSE and Connector used."""
    from processors.push import in_version
    from schemas.ocpi.adapters import wire
    from schemas.ocpi.v211.sessions import Session as Session211
    from schemas.ocpi.wire import EdgeContext
    from tests.ocpi_objects import evse, location

    state, [first] = decide(Lifecycle(), started(0, 1000), MeterConfig(), T0)
    request = plan_session(first, US)
    assert request is not None and request.body is not None
    ours = location(
        request.body["location_id"],
        country_code="ZZ",
        party_id="HUB",
        postal_code="3511",
        evses=[evse(request.body["evse_uid"]), evse("OTHER")],
    )
    old = in_version(request, "sessions", wire("2.1.1"), EdgeContext(location=ours))
    assert old.path == request.path and old.body is not None
    Session211.model_validate(old.body)  # what a 2.1.1 eMSP reads
    assert old.body["auth_id"] == request.body["cdr_token"]["contract_id"]
    assert [e["uid"] for e in old.body["location"]["evses"]] == [request.body["evse_uid"]]
    assert "cdr_token" not in old.body and "country_code" not in old.body
    # Its PATCHes carry no Location (they name none), in 2.1.1's names.
    _, [second] = decide(state, meter(15, 2000), MeterConfig(), T0)
    patched = plan_session(second, US)
    assert patched is not None
    body = in_version(patched, "sessions", wire("2.1.1")).body
    assert body is not None and "location" not in body and "kwh" in body
