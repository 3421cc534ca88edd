"""Hub client info (mod_hub_client_info, docs/adr/0044): the slice's
decisions and fold, and which lanes the pushers keep for a hub partner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from processors.push import party_lane_id, push_targets
from producers.hub_client_info import ClientInfoState, decide_put, evolve
from producers.partners import PartnerState
from producers.write_path import Origin, RefusedError
from schemas.events import ClientInfoPut, Party
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.credentials import CredentialsRole, Role
from schemas.ocpi.hub_client_info import ConnectionStatus
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.versions import Endpoint, InterfaceRole, ModuleId

T0 = datetime(2026, 12, 6, 12, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="NL", party_id="HBX"), "corr-1")


def _role(role: Role, cc: str, pid: str) -> CredentialsRole:
    return CredentialsRole(
        role=role, business_details=BusinessDetails(name=pid), country_code=cc, party_id=pid
    )


def partner(
    partner_id: str = "hub-1",
    *roles: CredentialsRole,
    module: str = ModuleId.LOCATIONS.value,
) -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        endpoints=(
            Endpoint(
                identifier=module,
                role=InterfaceRole.RECEIVER,
                url=f"https://{partner_id}.example/ocpi/{module}",
            ),
        ),
        roles=roles or (_role(Role.HUB, "NL", "HBX"),),
        our_token_encrypted="sealed",
        registered_at=T0,
    )


def body(cc: str = "DE", pid: str = "EMA", status: str = "CONNECTED", **more: Any) -> Any:
    return {
        "country_code": cc,
        "party_id": pid,
        "role": "EMSP",
        "status": status,
        "last_updated": "2026-12-06T12:00:00Z",
        **more,
    }


def put(state: ClientInfoState | None, b: Any, *, hub: PartnerState | None = None) -> Any:
    return decide_put(
        state,
        hub=hub or partner(),
        country_code=b["country_code"] if isinstance(b, dict) else "DE",
        party_id=b["party_id"] if isinstance(b, dict) else "EMA",
        body=b,
        now=T0,
        origin=ORIGIN,
    )


# --- decisions ------------------------------------------------------------------------


def test_a_hub_s_report_is_recorded_with_unknown_fields_kept() -> None:
    decision = put(None, body(x_hub_note="kept"))
    [event] = decision.events
    assert isinstance(event, ClientInfoPut)
    assert event.aggregate_key == "hub-1/DE/EMA"
    assert event.payload.status is ConnectionStatus.CONNECTED
    assert event.payload.object["x_hub_note"] == "kept"
    assert decision.answer is True  # the first report of this party


@pytest.mark.parametrize(
    "roles",
    [
        (_role(Role.CPO, "NL", "ABC"),),
        (_role(Role.EMSP, "NL", "ABC"), _role(Role.CPO, "NL", "ABD")),
    ],
)
def test_a_partner_that_is_no_hub_is_refused(roles: tuple[CredentialsRole, ...]) -> None:
    with pytest.raises(RefusedError) as refused:
        put(None, body(), hub=partner("cpo-1", *roles))
    assert refused.value.status is OcpiStatus.CLIENT_ERROR
    assert "HUB role" in refused.value.message


def test_the_body_must_be_about_the_party_the_url_names() -> None:
    with pytest.raises(RefusedError) as refused:
        decide_put(
            None,
            hub=partner(),
            country_code="DE",
            party_id="XYZ",
            body=body(),
            now=T0,
            origin=ORIGIN,
        )
    assert refused.value.status is OcpiStatus.INVALID_PARAMETERS


@pytest.mark.parametrize(
    "bad",
    [
        {k: v for k, v in body().items() if k != "status"},
        body(status="ASLEEP"),
        body(pid="TOOLONG"),
        {**body(), "role": "KING"},
        None,
    ],
)
def test_a_malformed_client_info_is_refused(bad: Any) -> None:
    with pytest.raises(ValidationError):
        put(None, bad)


# --- the fold -------------------------------------------------------------------------


def _event(status: str, at: datetime, recorded: datetime) -> ClientInfoPut:
    [event] = decide_put(
        None,
        hub=partner(),
        country_code="DE",
        party_id="EMA",
        body=body(status=status, last_updated=format_ocpi_datetime(at)),
        now=recorded,
        origin=ORIGIN,
    ).events
    assert isinstance(event, ClientInfoPut)
    return event


def test_connected_since_is_the_first_connection_and_survives_an_offline_spell() -> None:
    planned = evolve(None, _event("PLANNED", T0, T0))
    assert planned.connected_since is None
    up = evolve(planned, _event("CONNECTED", T0 + timedelta(minutes=1), T0 + timedelta(hours=1)))
    assert up.connected_since == T0 + timedelta(hours=1)
    down = evolve(up, _event("OFFLINE", T0 + timedelta(minutes=2), T0 + timedelta(hours=2)))
    again = evolve(down, _event("CONNECTED", T0 + timedelta(minutes=3), T0 + timedelta(hours=3)))
    assert down.status is ConnectionStatus.OFFLINE
    assert again.status is ConnectionStatus.CONNECTED
    # The lane resumes where it stood, not at the reconnection.
    assert again.connected_since == T0 + timedelta(hours=1)


def test_a_stale_report_is_recorded_not_applied() -> None:
    up = evolve(None, _event("CONNECTED", T0 + timedelta(minutes=5), T0))
    late = evolve(up, _event("OFFLINE", T0, T0 + timedelta(seconds=1)))
    assert late == up
    same_time = evolve(up, _event("OFFLINE", T0 + timedelta(minutes=5), T0 + timedelta(seconds=2)))
    assert same_time.status is ConnectionStatus.OFFLINE  # among equals, the later in the log


# --- lanes ----------------------------------------------------------------------------


def report(
    status: ConnectionStatus,
    pid: str = "EMA",
    role: Role = Role.EMSP,
    hub: str = "hub-1",
    since: datetime | None = T0,
) -> ClientInfoState:
    return ClientInfoState(
        hub_partner_id=hub,
        country_code="DE",
        party_id=pid,
        role=role,
        status=status,
        last_updated=T0,
        object={},
        connected_since=since,
    )


def test_a_hub_that_reported_nothing_keeps_one_lane_to_itself() -> None:
    targets = push_targets([partner()])
    assert list(targets) == ["hub-1"]
    assert targets["hub-1"].to == Party(country_code="NL", party_id="HBX")  # a broadcast


def test_a_hub_s_connected_parties_get_a_lane_each_and_the_others_none() -> None:
    reports = [
        report(ConnectionStatus.CONNECTED, "EMA", since=T0 + timedelta(minutes=1)),
        report(ConnectionStatus.CONNECTED, "EMB"),
        report(ConnectionStatus.OFFLINE, "EMC"),
        report(ConnectionStatus.SUSPENDED, "EMD"),
        report(ConnectionStatus.PLANNED, "EME", since=None),
        report(ConnectionStatus.CONNECTED, "CPA", role=Role.CPO),  # not an eMSP
        report(ConnectionStatus.CONNECTED, "EMF", hub="hub-2"),  # another hub's
    ]
    targets = push_targets([partner()], hub_reports=reports)
    ema, emb = (
        party_lane_id("hub-1", Party(country_code="DE", party_id=p)) for p in ("EMA", "EMB")
    )
    assert set(targets) == {ema, emb}
    lane = targets[ema]
    assert lane.lane == "hub-1@DE-EMA"
    assert lane.partner_id == "hub-1"
    assert lane.url == "https://hub-1.example/ocpi/locations"
    assert lane.to == Party(country_code="DE", party_id="EMA")  # through the hub, to the party
    assert lane.parties == frozenset({Party(country_code="DE", party_id="EMA")})
    assert lane.registered_at == T0 + timedelta(minutes=1)  # where the party was first connected


def test_an_offline_party_s_lane_comes_back_unchanged_when_it_reconnects() -> None:
    before = push_targets([partner()], hub_reports=[report(ConnectionStatus.CONNECTED)])
    assert push_targets([partner()], hub_reports=[report(ConnectionStatus.OFFLINE)]) == {}
    after = push_targets([partner()], hub_reports=[report(ConnectionStatus.CONNECTED)])
    # Same lane id (same consumer group: its committed position) and start.
    assert after == before


def test_tokens_go_to_the_cpo_parties_a_hub_reports() -> None:
    reports = [
        report(ConnectionStatus.CONNECTED, "CPA", role=Role.CPO),
        report(ConnectionStatus.CONNECTED, "EMA"),
    ]
    hub = partner("hub-1", module=ModuleId.TOKENS.value)
    targets = push_targets([hub], ModuleId.TOKENS.value, Role.CPO, reports)
    assert list(targets) == ["hub-1@DE-CPA"]


def test_reports_count_only_from_a_partner_with_the_hub_role() -> None:
    emsp = partner("hub-1", _role(Role.EMSP, "NL", "ABC"))
    targets = push_targets([emsp], hub_reports=[report(ConnectionStatus.CONNECTED)])
    assert list(targets) == ["hub-1"]
