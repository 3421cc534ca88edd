"""OCPI 2.3.0 on our routes (docs/adr/0045 §6): offered by default and
listed first, its version details, a 2.3.0 partner's registration (with
``hub_party_id``), its objects recorded in our model with their 2.3.0
fields kept, and what is refused with nothing recorded: an object of
another version, a module we do not serve in 2.3.0, a version we do not
offer. The API with the in-memory log (the harness of test_ocpi_versions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ocpi_hub.settings import Settings
from schemas.events import PartnerRegistered
from schemas.ocpi.credentials import Role
from tests.unit.test_ocpi_versions import PEER, Hub, b64, hub_with
from tests.unit.test_v230_adapter import _site

OURS = {"OCPI-to-country-code": "ZZ", "OCPI-to-party-id": "HUB"}


@pytest.fixture
def hub() -> Iterator[Hub]:
    yield from hub_with(Settings().ocpi_versions)  # the default


def credentials_230(token: str = "peer-b", **extra: Any) -> dict[str, Any]:
    return {
        "token": token,
        "url": f"{PEER}/versions",
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": "Peer"},
                "party_id": "PEE",
                "country_code": "NL",
            }
        ],
        **extra,
    }


def registered_230(hub: Hub) -> dict[str, str]:
    hub.peer.offers = ["2.2.1", "2.3.0"]
    hub.invite("token-a")
    body = credentials_230()
    resp = hub.client.post("/ocpi/2.3.0/credentials", headers=b64("token-a"), json=body)
    assert resp.json()["status_code"] == 1000, resp.text
    return {**b64(resp.json()["data"]["token"]), **OURS}


def test_230_is_offered_by_default_and_listed_first(hub: Hub) -> None:
    assert Settings().offered_versions == ("2.1.1", "2.2.1", "2.3.0")
    hub.invite("token-a")
    listed = hub.client.get("/ocpi/versions", headers=b64("token-a")).json()["data"]
    assert [v["version"] for v in listed] == ["2.3.0", "2.2.1", "2.1.1"]
    assert listed[0]["url"].endswith("/ocpi/2.3.0")
    details = hub.client.get("/ocpi/2.3.0", headers=b64("token-a")).json()["data"]
    assert details["version"] == "2.3.0"
    shown = {(e["identifier"], e["role"]): e["url"] for e in details["endpoints"]}
    assert set(shown) == {
        ("credentials", "SENDER"),
        ("locations", "SENDER"),
        ("locations", "RECEIVER"),
        ("tariffs", "SENDER"),
        ("tariffs", "RECEIVER"),
        ("tokens", "SENDER"),
        ("tokens", "RECEIVER"),
        ("sessions", "SENDER"),
        ("sessions", "RECEIVER"),
        ("cdrs", "SENDER"),
        ("cdrs", "RECEIVER"),
        ("commands", "SENDER"),
        ("commands", "RECEIVER"),
        ("chargingprofiles", "SENDER"),
        ("chargingprofiles", "RECEIVER"),
        ("hubclientinfo", "SENDER"),
        ("hubclientinfo", "RECEIVER"),
        ("payments", "RECEIVER"),
    }
    assert shown[("locations", "RECEIVER")].endswith("/ocpi/emsp/2.3.0/locations")


def test_a_230_partner_registers_in_230_and_its_hub_is_named(hub: Hub) -> None:
    hub.peer.offers = ["2.2.1", "2.3.0"]
    hub.invite("token-a")
    resp = hub.client.post(
        "/ocpi/2.3.0/credentials",
        headers=b64("token-a"),
        json=credentials_230(hub_party_id="NLHUB"),
    )
    assert resp.json()["status_code"] == 1000, resp.text
    ours = resp.json()["data"]
    assert [r["role"] for r in ours["roles"]] == ["CPO", "EMSP"] and "hub_party_id" not in ours
    assert ("details", f"{PEER}/2.3.0", "2.3.0") in hub.peer.calls
    [registered] = [e for e in hub.log.events if isinstance(e, PartnerRegistered)]
    assert registered.payload.version == "2.3.0"
    assert [(r.role, r.party_id) for r in registered.payload.roles] == [
        (Role.CPO, "PEE"),
        (Role.HUB, "HUB"),
    ]


RECEIVER = "/ocpi/emsp/2.3.0/locations/NL/PEE"


def site_230() -> dict[str, Any]:
    body = {
        **_site(),
        "country_code": "NL",
        "party_id": "PEE",
        "help_phone": "+31201234567",
        "parking_places": [
            {"id": "P1", "restricted_to_type": True, "vehicle_types": ["DISABLED"]}
            | {"reservation_required": False}
        ],
    }
    body["evses"][0]["parking"] = [{"parking_id": "P1"}]
    return body


def test_a_230_location_is_recorded_in_our_model_with_its_230_fields(hub: Hub) -> None:
    headers = registered_230(hub)
    put = hub.client.put(f"{RECEIVER}/LOC-1", headers=headers, json=site_230())
    assert put.status_code == 201 and put.json()["status_code"] == 1000, put.text
    assert put.headers["OCPI-from-party-id"] == "HUB"  # 2.3.0 has routing headers
    recorded = hub.log.events[-1].payload.object  # type: ignore[attr-defined]
    assert recorded["help_phone"] == "+31201234567"
    assert recorded["parking_places"][0]["vehicle_types"] == ["DISABLED"]
    [c] = recorded["evses"][0]["connectors"]
    assert (c["standard"], c["ocpi_v230"]) == ("IEC_62196_T2_COMBO", {"standard": "MCS"})
    patched = hub.client.patch(
        f"{RECEIVER}/LOC-1/E1",
        headers=headers,
        json={"status": "CHARGING", "last_updated": "2026-03-02T00:00:00Z"},
    )
    assert patched.json()["status_code"] == 1000, patched.text
    assert hub.types()[-1] == "LocationObjectPatched"


def test_a_230_tariff_and_token_are_recorded(hub: Hub) -> None:
    headers = registered_230(hub)
    tariff = {
        "country_code": "NL",
        "party_id": "PEE",
        "id": "T1",
        "currency": "EUR",
        "tax_included": "YES",
        "max_price": {"before_taxes": 10, "after_taxes": 12.1},
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.5, "step_size": 1}]}],
        "last_updated": "2026-03-01T09:00:00Z",
    }
    put = hub.client.put("/ocpi/emsp/2.3.0/tariffs/NL/PEE/T1", headers=headers, json=tariff)
    assert put.json()["status_code"] == 1000, put.text
    recorded = hub.log.events[-1].payload.object  # type: ignore[attr-defined]
    assert recorded["tax_included"] == "YES"
    assert recorded["max_price"] == {"excl_vat": 10, "incl_vat": 12.1}

    # An EMAID token (TokenType is an OpenEnum in 2.3.0): OTHER in our model.
    token = {
        "country_code": "NL",
        "party_id": "PEE",
        "uid": "EMA-1",
        "type": "EMAID",
        "contract_id": "NL-PEE-C1",
        "issuer": "Peer",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-03-01T09:00:00Z",
    }
    put = hub.client.put(
        "/ocpi/cpo/2.3.0/tokens/NL/PEE/EMA-1?type=OTHER", headers=headers, json=token
    )
    assert put.json()["status_code"] == 1000, put.text
    recorded = hub.log.events[-1].payload.token  # type: ignore[attr-defined]
    assert (recorded["type"], recorded["ocpi_v230"]) == ("OTHER", {"type": "EMAID"})


def test_objects_of_another_version_are_refused_and_nothing_recorded(hub: Hub) -> None:
    headers = registered_230(hub)
    before = len(hub.log.events)
    # A 2.2.1 tariff: no tax_included, which a 2.3.0 Tariff requires.
    tariff_221 = {
        "country_code": "NL",
        "party_id": "PEE",
        "id": "T2",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.5, "step_size": 1}]}],
        "last_updated": "2026-03-01T09:00:00Z",
    }
    refused = hub.client.put("/ocpi/emsp/2.3.0/tariffs/NL/PEE/T2", headers=headers, json=tariff_221)
    assert refused.json()["status_code"] == 2001 and "tax_included" in refused.text
    # An EVSE linking a parking place its location does not have.
    bad = site_230()
    bad["evses"][0]["parking"] = [{"parking_id": "P9"}]
    refused = hub.client.put(f"{RECEIVER}/LOC-2", headers=headers, json=bad)
    assert refused.json()["status_code"] == 2001 and "P9" in refused.text
    # A version we do not offer.
    resp = hub.client.put("/ocpi/emsp/2.4.0/locations/NL/PEE/L", headers=headers, json={})
    assert resp.json()["status_code"] == 3002, resp.text
    # A token URL naming a 2.3.0-only type: our token key holds a 2.2.1 TokenType.
    emaid = hub.client.put(
        "/ocpi/cpo/2.3.0/tokens/NL/PEE/EMA-2?type=EMAID", headers=headers, json={}
    )
    assert emaid.json()["status_code"] == 2001, emaid.text
    # Its token on a 2.2.1 route: not its version.
    other = hub.client.put("/ocpi/emsp/2.2.1/locations/NL/PEE/LOC-3", headers=headers, json={})
    assert other.json()["status_code"] == 2000 and "registered for OCPI 2.3.0" in other.text
    assert len(hub.log.events) == before


def test_a_230_location_at_a_221_endpoint_is_refused(hub: Hub) -> None:
    hub.peer.offers = ["2.2.1"]
    hub.invite("token-a")
    token = hub.client.post(
        "/ocpi/2.2.1/credentials", headers=b64("token-a"), json=credentials_230()
    ).json()["data"]["token"]
    before = len(hub.log.events)
    # An MCS connector is 2.3.0's; 2.2.1 strictly refuses the value.
    refused = hub.client.put(
        "/ocpi/emsp/2.2.1/locations/NL/PEE/LOC-1", headers={**b64(token), **OURS}, json=site_230()
    )
    assert refused.json()["status_code"] == 2001 and "standard" in refused.text
    assert len(hub.log.events) == before


@pytest.mark.parametrize("module", ["commands", "chargingprofiles"])
def test_we_send_commands_and_charging_profiles_to_a_230_partner_not_profiles_to_a_211_one(
    module: str,
) -> None:
    from producers.sent_commands import receiver_target
    from producers.write_path import RefusedError
    from schemas.ocpi.versions import ModuleId
    from tests.unit.test_sent_commands import _partner

    endpoints = ({"identifier": module, "role": "RECEIVER", "url": "https://cpo.example/x"},)
    on_221 = _partner().model_copy(update={"endpoints": endpoints})
    on_221 = type(on_221).model_validate(on_221.model_dump())
    assert receiver_target("CPO-A", on_221, ModuleId(module)).url == "https://cpo.example/x"
    on_230 = on_221.model_copy(update={"version": "2.3.0"})
    assert receiver_target("CPO-A", on_230, ModuleId(module)).url == "https://cpo.example/x"
    on_211 = on_221.model_copy(update={"version": "2.1.1"})
    if module == "commands":
        assert receiver_target("CPO-A", on_211, ModuleId(module)).url == "https://cpo.example/x"
    else:  # 2.1.1 has no ChargingProfiles module: its result would have no route
        with pytest.raises(RefusedError, match=f"OCPI 2.1.1, in which we do not speak {module}"):
            receiver_target("CPO-A", on_211, ModuleId(module))


def test_a_230_hub_reports_its_clients_at_our_230_hubclientinfo(hub: Hub) -> None:
    """A 2.3.0 hub names itself in ``hub_party_id`` (no HUB role in 2.3.0):
    it may PUT ClientInfo at /ocpi/2.3.0/hubclientinfo, answered HTTP 200
    (a first report too); a 2.3.0 partner that is no hub may not (2000,
    nothing recorded)."""
    hub.peer.offers = ["2.2.1", "2.3.0"]
    hub.invite("token-a")
    resp = hub.client.post(
        "/ocpi/2.3.0/credentials",
        headers=b64("token-a"),
        json=credentials_230(hub_party_id="NLHUB"),
    )
    assert resp.json()["status_code"] == 1000, resp.text
    headers = b64(resp.json()["data"]["token"])  # not routed: no OCPI-to headers
    info = {
        "country_code": "DE",
        "party_id": "EMA",
        "role": "EMSP",
        "status": "CONNECTED",
        "last_updated": "2026-03-01T09:00:00Z",
        "x_region": "north",  # kept, as any unknown field
    }
    put = hub.client.put("/ocpi/2.3.0/hubclientinfo/DE/EMA", headers=headers, json=info)
    assert (put.status_code, put.json()["status_code"]) == (200, 1000), put.text
    assert hub.types()[-1] == "ClientInfoPut"
    recorded = hub.log.events[-1].payload.object  # type: ignore[attr-defined]
    assert recorded == info
    # Its token on the 2.2.1 route: not its version.
    other = hub.client.put("/ocpi/2.2.1/hubclientinfo/DE/EMA", headers=headers, json=info)
    assert other.json()["status_code"] == 2000 and "registered for OCPI 2.3.0" in other.text


def test_a_230_partner_that_is_no_hub_reports_nothing(hub: Hub) -> None:
    headers = registered_230(hub)
    before = len(hub.log.events)
    info = {
        "country_code": "DE",
        "party_id": "EMA",
        "role": "EMSP",
        "status": "CONNECTED",
        "last_updated": "2026-03-01T09:00:00Z",
    }
    put = hub.client.put("/ocpi/2.3.0/hubclientinfo/DE/EMA", headers=headers, json=info)
    assert (put.status_code, put.json()["status_code"]) == (200, 2000), put.text
    assert len(hub.log.events) == before
