"""Pushing our locations to partners: the pure core of processors/push.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.push import (
    Outcome,
    PushRequest,
    StaleGuard,
    backoff_s,
    classify,
    lane_start_ms,
    module_url,
    partner_message,
    plan,
    push_targets,
    routing_headers,
)
from producers.partner_client import ModuleAnswer, authorization
from producers.partners import PartnerState
from schemas.events import (
    EvseStatusReported,
    EvseStatusResolved,
    LocationObjectPatched,
    LocationObjectPut,
    Party,
)
from schemas.events.locations import (
    EvseStatusReportedPayload,
    EvseStatusResolvedPayload,
    LocationObjectPatchedPayload,
    LocationObjectPutPayload,
    location_key,
)
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails, EvseStatus
from schemas.ocpi.versions import Endpoint, InterfaceRole

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
US = Party(country_code="ZZ", party_id="HUB")


def _meta(cc: str, pid: str, loc: str) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "aggregate_key": location_key(cc, pid, loc),
        "occurred_at": T0,
        "recorded_at": T0,
        "source": Party(country_code=cc.upper(), party_id=pid.upper()),
        "correlation_id": "corr-1",
    }


def put(
    body: dict[str, Any],
    *,
    evse: str | None = None,
    connector: str | None = None,
    cc: str = "ZZ",
    pid: str = "HUB",
    loc: str = "LOC1",
    at: datetime = T0,
) -> LocationObjectPut:
    return LocationObjectPut(
        **_meta(cc, pid, loc),
        payload=LocationObjectPutPayload(
            country_code=cc,
            party_id=pid,
            location_id=loc,
            evse_uid=evse,
            connector_id=connector,
            object=body,
            last_updated=at,
        ),
    )


def patch(
    body: dict[str, Any],
    *,
    evse: str | None = None,
    connector: str | None = None,
    cc: str = "ZZ",
    pid: str = "HUB",
    at: datetime = T0,
) -> LocationObjectPatched:
    return LocationObjectPatched(
        **_meta(cc, pid, "LOC1"),
        payload=LocationObjectPatchedPayload(
            country_code=cc,
            party_id=pid,
            location_id="LOC1",
            evse_uid=evse,
            connector_id=connector,
            patch=body,
            last_updated=at,
        ),
    )


def reported(cc: str = "ZZ", pid: str = "HUB") -> EvseStatusReported:
    return EvseStatusReported(
        **_meta(cc, pid, "LOC1"),
        payload=EvseStatusReportedPayload(
            country_code=cc,
            party_id=pid,
            location_id="LOC1",
            evse_uid="EVSE-1",
            status=EvseStatus.CHARGING,
            last_updated=T0,
        ),
    )


# --- plan -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evse", "connector", "path", "key"),
    [
        (None, None, "/ZZ/HUB/LOC1", "ZZ/HUB/LOC1"),
        ("evse-1", None, "/ZZ/HUB/LOC1/evse-1", "ZZ/HUB/LOC1/EVSE-1"),
        ("evse-1", "2", "/ZZ/HUB/LOC1/evse-1/2", "ZZ/HUB/LOC1/EVSE-1/2"),
    ],
)
def test_a_put_of_our_object_is_sent_whole_at_its_level(
    evse: str | None, connector: str | None, path: str, key: str
) -> None:
    body = {"id": "x", "last_updated": "2026-06-01T12:00:00Z"}
    event = put(body, evse=evse, connector=connector)
    request = plan(event, US)
    assert request == PushRequest(
        method="PUT",
        path=path,
        body=body,
        object_key=key,
        last_updated=T0,
        correlation_id="corr-1",
        event_id=str(event.event_id),
    )


@pytest.mark.parametrize(
    ("evse", "connector", "path"),
    [
        (None, None, "/ZZ/HUB/LOC1"),
        ("E1", None, "/ZZ/HUB/LOC1/E1"),
        ("E1", "1", "/ZZ/HUB/LOC1/E1/1"),
    ],
)
def test_a_patch_is_sent_as_recorded_nulls_included(
    evse: str | None, connector: str | None, path: str
) -> None:
    body = {"name": None, "last_updated": "2026-06-01T12:00:00Z"}
    request = plan(patch(body, evse=evse, connector=connector), US)
    assert request is not None
    assert (request.method, request.path, request.body) == ("PATCH", path, body)
    assert request.body["name"] is None  # null clears the field at the receiver


def test_what_only_states_an_evse_status_is_left_to_the_status_lane() -> None:
    """A status of ours reaches partners once: resolved, by the EVSE status
    lane (processors/evse_status_push.py), never also as recorded."""
    assert plan(reported(), US) is None
    status_only = {"status": "CHARGING", "last_updated": "2026-06-01T12:00:00Z"}
    assert plan(patch(status_only, evse="EVSE-1"), US) is None
    # With any other field the PATCH goes out whole, status included.
    more = {**status_only, "floor_level": "2"}
    request = plan(patch(more, evse="EVSE-1"), US)
    assert request is not None and request.body == more
    # A connector's or a location's PATCH is never a status statement.
    assert plan(patch(status_only, evse="EVSE-1", connector="1"), US) is not None
    assert plan(patch({"last_updated": "2026-06-01T12:00:00Z"}), US) is not None


def test_ownership_compares_case_insensitively() -> None:
    assert plan(put({}, cc="zz", pid="hub"), US) is not None


@pytest.mark.parametrize(
    "event",
    [
        put({}, cc="NL", pid="ABC"),
        patch({"last_updated": "2026-06-01T12:00:00Z"}, cc="NL", pid="ABC"),
        reported("NL", "ABC"),
        put({}, cc="ZZ", pid="ABC"),  # same country, other party
    ],
)
def test_partners_locations_are_never_pushed(event: object) -> None:
    assert plan(event, US) is None


def test_other_events_are_not_pushed() -> None:
    resolved = EvseStatusResolved(
        **_meta("ZZ", "HUB", "LOC1"),
        payload=EvseStatusResolvedPayload(
            country_code="ZZ",
            party_id="HUB",
            location_id="LOC1",
            evse_uid="E1",
            status=EvseStatus.AVAILABLE,
            last_updated=T0,
            reported_status=None,
        ),
    )
    assert plan(resolved, US) is None


def test_ids_are_escaped_in_the_path() -> None:
    request = plan(put({}, loc="A/B C"), US)
    assert request is not None
    assert request.path == "/ZZ/HUB/A%2FB%20C"


# --- targets and headers -----------------------------------------------------


def _role(role: Role, cc: str, pid: str) -> CredentialsRole:
    return CredentialsRole(
        role=role, business_details=BusinessDetails(name=pid), party_id=pid, country_code=cc
    )


def partner(
    partner_id: str = "NL-ABC",
    *,
    status: str = "registered",
    receiver: bool = True,
    roles: tuple[CredentialsRole, ...] = (
        _role(Role.CPO, "NL", "CPX"),
        _role(Role.EMSP, "NL", "ABC"),
    ),
    sealed: str | None = "sealed",
) -> PartnerState:
    endpoints = [
        Endpoint(
            identifier="locations",
            role=InterfaceRole.SENDER,
            url="https://p.example/cpo/locations",
        )
    ]
    if receiver:
        endpoints.append(
            Endpoint(
                identifier="locations",
                role=InterfaceRole.RECEIVER,
                url="https://p.example/emsp/locations/",
            )
        )
    return PartnerState(
        partner_id=partner_id,
        status=status,
        endpoints=tuple(endpoints),
        roles=roles,
        our_token_encrypted=sealed,
    )


def test_targets_are_registered_partners_with_a_locations_receiver() -> None:
    targets = push_targets(
        [
            partner("A"),
            partner("B", receiver=False),
            partner("C", status="unregistered"),
            partner("D", sealed=None),
            partner("E", roles=()),
        ]
    )
    assert list(targets) == ["A"]
    a = targets["A"]
    assert module_url(a.url, "/NL/ABC/L1") == "https://p.example/emsp/locations/NL/ABC/L1"
    assert a.to == Party(country_code="NL", party_id="ABC")  # the eMSP role, not the first


def test_a_partner_without_an_emsp_role_is_addressed_by_its_first_role() -> None:
    targets = push_targets([partner(roles=(_role(Role.NSP, "DE", "NSP"),))])
    assert targets["NL-ABC"].to == Party(country_code="DE", party_id="NSP")


def test_a_changed_token_or_endpoint_makes_a_different_target() -> None:
    before = push_targets([partner()])["NL-ABC"]
    assert push_targets([partner()])["NL-ABC"] == before
    assert push_targets([partner(sealed="other")])["NL-ABC"] != before


def test_headers_route_from_us_to_the_partner_and_carry_the_correlation_id() -> None:
    request = plan(put({}), US)
    assert request is not None
    headers = routing_headers(
        request, us=US, to=Party(country_code="NL", party_id="ABC"), request_id="r-1"
    )
    assert headers == {
        "Content-Type": "application/json",
        "X-Request-ID": "r-1",
        "X-Correlation-ID": "corr-1",
        "OCPI-from-country-code": "ZZ",
        "OCPI-from-party-id": "HUB",
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "ABC",
    }
    assert not any("token" in v.lower() for v in headers.values())


def test_the_token_is_sent_base64_encoded() -> None:
    assert authorization("abc") == "Token YWJj"


# --- classification and backoff -----------------------------------------------


@pytest.mark.parametrize(
    ("http", "ocpi", "outcome"),
    [
        (200, 1000, Outcome.DELIVERED),
        (201, 1000, Outcome.DELIVERED),
        (200, None, Outcome.DELIVERED),  # HTTP accepted, no envelope: lenient
        (200, 2001, Outcome.REJECTED),
        (200, 2003, Outcome.REJECTED),
        (400, 2001, Outcome.REJECTED),
        (404, None, Outcome.REJECTED),
        (405, None, Outcome.REJECTED),
        (200, 3000, Outcome.RETRY),
        (200, 3001, Outcome.RETRY),
        (200, 4002, Outcome.RETRY),
        (200, 4001, Outcome.REJECTED),
        (401, 2000, Outcome.RETRY),
        (408, None, Outcome.RETRY),
        (429, None, Outcome.RETRY),
        (500, 3000, Outcome.RETRY),
        (503, None, Outcome.RETRY),
        (None, None, Outcome.RETRY),  # no answer: refused, reset, timed out
    ],
)
def test_classify(http: int | None, ocpi: int | None, outcome: Outcome) -> None:
    assert classify(ModuleAnswer(http_status=http, ocpi_status=ocpi)) is outcome


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff_s(n, 0.5, 10.0) for n in range(1, 9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert backoff_s(10_000, 0.5, 10.0) == 10.0  # no overflow after long outages


# --- staleness -----------------------------------------------------------------


def test_an_older_change_of_an_object_is_not_sent_after_a_newer_one() -> None:
    guard = StaleGuard()
    newer = plan(patch({"last_updated": "x"}, evse="E1", at=T0 + timedelta(seconds=5)), US)
    older = plan(patch({"last_updated": "x"}, evse="E1", at=T0), US)
    same = plan(patch({"last_updated": "x"}, evse="E1", at=T0 + timedelta(seconds=5)), US)
    other_object = plan(patch({"last_updated": "x"}, evse="E2", at=T0), US)
    assert newer and older and same and other_object
    assert not guard.stale(older)  # nothing delivered yet
    guard.delivered(newer)
    assert guard.stale(older)
    assert not guard.stale(same)  # a replay of the same change is harmless
    assert not guard.stale(other_object)
    guard.delivered(older)  # never moves back
    assert guard.stale(older)


def test_a_lane_starts_at_the_registration_but_no_earlier_than_the_backfill_allows() -> None:
    registered = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    at = registered.timestamp()
    # Registered a minute ago: both start at the registration, less the margin.
    fresh, registration = lane_start_ms(registered, at + 60, margin_s=5, backfill_max_s=3600)
    assert fresh == registration == int((at - 5) * 1000)
    # Registered two days ago (a lane added later): a new group starts an
    # hour back; a committed position is still compared with the registration.
    fresh, registration = lane_start_ms(registered, at + 172_800, margin_s=5, backfill_max_s=3600)
    assert fresh == int((at + 172_800 - 3600) * 1000)
    assert registration == int((at - 5) * 1000)
    # Unknown registration time: the end of the log, the committed position kept.
    assert lane_start_ms(None, at, margin_s=5, backfill_max_s=3600) == (None, None)


def test_a_push_without_a_path_goes_to_the_endpoint_url_as_given() -> None:
    """A CDR is POSTed to the partner's CDRs endpoint URL itself: a trailing
    '/' it gave stays (extrawest-ocpi answers 307 without it), and object
    paths are joined with exactly one '/'."""
    assert module_url("https://p.example/cdrs/", "") == "https://p.example/cdrs/"
    assert module_url("https://p.example/cdrs", "") == "https://p.example/cdrs"
    assert module_url("https://p.example/sessions/", "/NL/ABC/S1") == (
        "https://p.example/sessions/NL/ABC/S1"
    )
    assert module_url("https://p.example/sessions", "/NL/ABC/S1") == (
        "https://p.example/sessions/NL/ABC/S1"
    )


# --- each partner in its own OCPI version (docs/adr/0045) --------------------------------


def test_a_211_partner_is_a_target_in_its_version_for_what_211_can_say() -> None:
    old = partner().model_copy(update={"version": "2.1.1"})
    [target] = push_targets([old]).values()
    assert target.version == "2.1.1"
    assert target != push_targets([partner()])["NL-ABC"]  # a version change restarts the lane
    # Sessions are said in 2.1.1 too; charging profiles are not (2.2 on).
    for module, served in (("sessions", True), ("chargingprofiles", False)):
        receiving = old.model_copy(
            update={
                "endpoints": (
                    Endpoint(
                        identifier=module,
                        role=InterfaceRole.RECEIVER,
                        url="https://p.example/emsp/x",  # type: ignore[arg-type]
                    ),
                )
            }
        )
        assert bool(push_targets([receiving], module)) is served


def test_a_push_to_a_211_partner_is_in_its_shape() -> None:
    from processors.push import in_version
    from schemas.ocpi.adapters import wire
    from tests.ocpi_objects import connector

    whole = put(connector("1", tariff_ids=["T1"]), evse="E1", connector="1")
    request = plan(whole, US)
    assert request is not None
    assert in_version(request, "locations", wire("2.2.1")) is request
    old = in_version(request, "locations", wire("2.1.1"))
    assert old.path == "/ZZ/HUB/LOC1/E1/1"
    assert old.body is not None
    assert (old.body["voltage"], old.body["tariff_id"]) == (230, "T1")
    status = plan(patch({"name": "Depot", "last_updated": "2026-06-01T12:00:00Z"}), US)
    assert status is not None
    assert in_version(status, "locations", wire("2.1.1")).body == {
        "name": "Depot",
        "last_updated": "2026-06-01T12:00:00Z",
    }
    assert authorization("tok", raw=True) == "Token tok"


def test_a_refusal_is_logged_with_the_partners_message_cut_short() -> None:
    """push_rejected names why the partner refused (a 2.1.1 eMSP refusing a
    location without postal_code said so only in its status_message)."""
    said = {"status_code": 2001, "status_message": "postal_code: Field required " * 20}
    message = partner_message(ModuleAnswer(200, 2001, body=said))
    assert message is not None and message.startswith("postal_code: Field required")
    assert len(message) == 300
    assert partner_message(ModuleAnswer(None, None, error="ConnectError")) is None
    assert partner_message(ModuleAnswer(200, 1000, body={"status_code": 1000})) is None
