"""Several OCPI versions from one core (issue 16, item 1; docs/adr/0045):
the versions we list, the highest common version picked at registration and
recorded per partner, the token rules of each version's routes, 2.1.1
credentials both ways, and what is refused with nothing recorded."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import ocpi_version_and_module
from api.ocpi import credentials as credentials_api
from ocpi_hub.secrets import TokenVault, hash_token
from ocpi_hub.settings import Settings
from producers.credentials import CredentialsService
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partner_client import PartnerCallError
from producers.partners import SLICE
from producers.registration import UnsupportedVersionError, discover
from producers.write_path import WritePath
from schemas.events import PartnerRegistered, Party
from schemas.ocpi.adapters import wire
from schemas.ocpi.credentials import BusinessDetails, Credentials, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint, InterfaceRole, Version, VersionDetails
from schemas.ocpi.wire import highest_common

PEER = "https://peer.example/ocpi"


def b64(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def raw(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + token}


@dataclass
class Peer:
    """A partner's OCPI API as the credentials service sees it (after the
    HTTP client's version adapter): it offers ``offers``."""

    offers: list[str] = field(default_factory=lambda: ["2.1.1"])
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    gives: list[str] = field(default_factory=lambda: ["their-1", "their-2", "their-3"])

    async def versions(self, url: str, token: str) -> list[Version]:
        self.calls.append(("versions", url, "-"))
        return [Version(version=v, url=f"{PEER}/{v}") for v in self.offers]  # type: ignore[arg-type]

    async def version_details(
        self, url: str, token: str, *, version: str = "2.2.1", partner_role: Role | None = None
    ) -> VersionDetails:
        self.calls.append(("details", url, version))
        endpoint = Endpoint(
            identifier="credentials",
            role=InterfaceRole.SENDER,
            url=f"{PEER}/{version}/credentials",  # type: ignore[arg-type]
        )
        return VersionDetails(version=version, endpoints=[endpoint])

    async def post_credentials(
        self, url: str, token: str, ours: Credentials, **kw: Any
    ) -> Credentials:
        self.calls.append(("post", url, kw.get("version", "2.2.1")))
        return self._theirs(kw.get("partner_role"))

    async def put_credentials(
        self, url: str, token: str, ours: Credentials, **kw: Any
    ) -> Credentials:
        self.calls.append(("put", url, kw.get("version", "2.2.1")))
        return self._theirs(kw.get("partner_role"))

    async def delete_credentials(self, url: str, token: str, **kw: Any) -> None:
        self.calls.append(("delete", url, kw.get("version", "2.2.1")))

    def _theirs(self, role: Role | None) -> Credentials:
        return Credentials(
            token=self.gives.pop(0),
            url=f"{PEER}/versions",  # type: ignore[arg-type]
            roles=[
                CredentialsRole(
                    role=role or Role.CPO,
                    business_details=BusinessDetails(name="Peer"),
                    party_id="PEE",
                    country_code="NL",
                )
            ],
        )


@dataclass
class Hub:
    client: TestClient
    log: InMemoryEventLog
    service: CredentialsService
    peer: Peer

    def invite(self, token_a: str, role: Role | None = Role.CPO) -> None:
        self.client.portal.call(  # type: ignore[union-attr]
            lambda: self.service.invite(
                partner_id="NL-PEE",
                country_code="NL",
                party_id="PEE",
                role=role,
                token_a_hash=hash_token(token_a),
                legacy_token=False,
                correlation_id="c",
            )
        )

    def types(self) -> list[str]:
        return [type(e).__name__ for e in self.log.events]

    def state(self) -> Any:
        return self.client.portal.call(  # type: ignore[union-attr]
            lambda: self.service.write_path.state(SLICE, "NL-PEE")
        )


def hub_with(versions: str) -> Iterator[Hub]:
    log = InMemoryEventLog()
    path = WritePath(log, InMemoryDecisionStore(), InMemoryLogHistory(log))
    peer = Peer()
    settings = Settings(party_country_code="ZZ", party_id="HUB", ocpi_versions=versions)
    service = CredentialsService(
        write_path=path,
        client=peer,
        vault=TokenVault(Fernet.generate_key()),
        us=Party(country_code="ZZ", party_id="HUB"),
        business_name="Hub",
        versions_url="https://hub.example/ocpi/versions",
        versions=settings.offered_versions,
    )
    app = create_app(settings, event_log=log, write_path=path)
    app.dependency_overrides[credentials_api._service] = lambda: service
    with TestClient(app) as client:
        yield Hub(client, log, service, peer)


@pytest.fixture
def hub() -> Iterator[Hub]:
    yield from hub_with("2.1.1,2.2.1")


@pytest.fixture
def pinned() -> Iterator[Hub]:
    yield from hub_with("2.2.1")


def theirs_211(token: str = "peer-b") -> dict[str, Any]:
    return {
        "token": token,
        "url": f"{PEER}/versions",
        "business_details": {"name": "Peer"},
        "party_id": "PEE",
        "country_code": "NL",
    }


# --- versions and their details --------------------------------------------------------


def test_versions_lists_both_highest_first_and_211_details_have_no_roles(hub: Hub) -> None:
    hub.invite("token-a")  # invited as a CPO: we play eMSP towards it
    listed = hub.client.get("/ocpi/versions", headers=b64("token-a")).json()["data"]
    assert [v["version"] for v in listed] == ["2.2.1", "2.1.1"]
    assert listed[1]["url"].endswith("/ocpi/2.1.1")

    details = hub.client.get("/ocpi/2.1.1", headers=raw("token-a")).json()["data"]
    assert details["version"] == "2.1.1"
    shown = {e["identifier"]: e["url"] for e in details["endpoints"]}
    assert all(set(e) == {"identifier", "url"} for e in details["endpoints"])
    # Towards a CPO we are its eMSP: our locations Receiver, our tokens Sender.
    modules = {"credentials", "locations", "tariffs", "tokens", "sessions", "cdrs", "commands"}
    assert set(shown) == modules
    assert "/ocpi/emsp/2.1.1/commands" in shown["commands"]  # our Sender: results come here
    assert "/ocpi/emsp/2.1.1/locations" in shown["locations"]
    assert "/ocpi/emsp/2.1.1/sessions" in shown["sessions"]
    assert "/ocpi/emsp/2.1.1/cdrs" in shown["cdrs"]
    assert "/ocpi/emsp/2.1.1/tariffs" in shown["tariffs"]
    assert "/ocpi/emsp/2.1.1/tokens" in shown["tokens"]
    # The 2.2.1 details are unchanged: every module, with roles.
    full = hub.client.get("/ocpi/2.2.1", headers=b64("token-a")).json()["data"]["endpoints"]
    assert {"identifier": "sessions", "role": "SENDER"}.items() <= full[7].items()


@pytest.mark.parametrize(
    "path",
    ["/ocpi/2.0", "/ocpi/3.0/credentials", "/ocpi/cpo/2.1.1/chargingprofiles"],
)
def test_a_version_or_module_we_do_not_serve_is_3002(hub: Hub, path: str) -> None:
    hub.invite("token-a")
    resp = hub.client.get(path, headers=b64("token-a"))
    assert resp.status_code == 404, resp.text
    assert resp.json()["status_code"] == 3002
    assert "we offer 2.1.1, 2.2.1" in resp.json()["status_message"]


def test_a_platform_pinned_to_221_does_not_serve_211(pinned: Hub) -> None:
    pinned.invite("token-a")
    listed = pinned.client.get("/ocpi/versions", headers=b64("token-a")).json()["data"]
    assert [v["version"] for v in listed] == ["2.2.1"]
    resp = pinned.client.post("/ocpi/2.1.1/credentials", headers=raw("token-a"), json=theirs_211())
    # HTTP 200: on /ocpi only a GET of what is not there is a 404 (docs/adr/0039).
    assert (resp.status_code, resp.json()["status_code"]) == (200, 3002)
    assert pinned.types() == ["PartnerInvited"]


def test_the_settings_refuse_a_version_we_cannot_speak() -> None:
    with pytest.raises(ValueError, match="cannot speak"):
        Settings(ocpi_versions="2.1.1,2.0")


# --- a 2.1.1 partner registers with us -------------------------------------------------


def test_a_211_partner_registers_with_a_raw_token_and_211_credentials(hub: Hub) -> None:
    hub.invite("token-a")
    resp = hub.client.post("/ocpi/2.1.1/credentials", headers=raw("token-a"), json=theirs_211())
    assert resp.status_code == 200 and resp.json()["status_code"] == 1000, resp.text
    ours = resp.json()["data"]
    # Our answer in 2.1.1's shape: the party at the top level, no roles.
    assert set(ours) == {"token", "url", "business_details", "party_id", "country_code"}
    assert (ours["country_code"], ours["party_id"]) == ("ZZ", "HUB")
    # We read its 2.1.1 details (not 2.2.1, which it does not offer).
    assert ("details", f"{PEER}/2.1.1", "2.1.1") in hub.peer.calls
    [registered] = [e for e in hub.log.events if isinstance(e, PartnerRegistered)]
    assert registered.payload.version == "2.1.1"
    assert [r.role for r in registered.payload.roles] == [Role.CPO]  # its invitation's role

    token_c = ours["token"]
    # Its token, as is, opens our 2.1.1 credentials; base64-encoded it is unknown there.
    assert hub.client.get("/ocpi/2.1.1/credentials", headers=raw(token_c)).status_code == 200
    assert hub.client.get("/ocpi/2.1.1/credentials", headers=b64(token_c)).status_code == 401
    # A 2.2.1 functional route is not its version: a clear refusal.
    wrong = hub.client.get("/ocpi/cpo/2.2.1/locations", headers=b64(token_c))
    assert wrong.status_code == 200 and wrong.json()["status_code"] == 2000
    assert "registered for OCPI 2.1.1" in wrong.json()["status_message"]
    raw_on_221 = hub.client.get("/ocpi/cpo/2.2.1/locations", headers=raw(token_c))
    # Found (raw), then the same version refusal.
    assert "registered for OCPI 2.1.1" in raw_on_221.json()["status_message"]

    # A credentials PUT at our 2.2.1 endpoint moves it to 2.2.1 (it now offers it).
    hub.peer.offers = ["2.1.1", "2.2.1"]
    moved = hub.client.put(
        "/ocpi/2.2.1/credentials",
        headers=b64(token_c),
        json={
            "token": "peer-b2",
            "url": f"{PEER}/versions",
            "roles": [
                {
                    "role": "CPO",
                    "business_details": {"name": "Peer"},
                    "party_id": "PEE",
                    "country_code": "NL",
                }
            ],
        },
    )
    assert moved.status_code == 200, moved.text
    assert "roles" in moved.json()["data"]
    assert hub.types()[-1] == "PartnerCredentialsUpdated"
    assert hub.log.events[-1].payload.version == "2.2.1"  # type: ignore[attr-defined]


def test_we_register_with_a_211_partner_and_a_put_moves_it_to_221(hub: Hub) -> None:
    state = hub.client.portal.call(  # type: ignore[union-attr]
        lambda: hub.service.register_with(
            versions_url=f"{PEER}/versions",
            token_a="their-a",
            our_token="ours",
            our_token_hash=hash_token("ours"),
            partner_id="NL-PEE",
            role=Role.CPO,
        )
    )
    assert state.version == "2.1.1"
    assert ("post", f"{PEER}/2.1.1/credentials", "2.1.1") in hub.peer.calls
    # While the registration was under way, it could read our 2.1.1 details
    # with the token we sent it: our eMSP interfaces (it is a CPO).
    hub.peer.offers = ["2.1.1", "2.2.1"]
    updated = hub.client.portal.call(  # type: ignore[union-attr]
        lambda: hub.service.update_with("NL-PEE", new_token="ours-2", new_token_hash="h2")
    )
    assert updated.version == "2.2.1"
    assert ("put", f"{PEER}/2.2.1/credentials", "2.2.1") in hub.peer.calls


def test_we_need_the_role_of_a_211_partner(hub: Hub) -> None:
    with pytest.raises(UnsupportedVersionError, match="names no roles"):
        hub.client.portal.call(  # type: ignore[union-attr]
            lambda: hub.service.register_with(
                versions_url=f"{PEER}/versions",
                token_a="their-a",
                our_token="ours",
                our_token_hash=hash_token("ours"),
                partner_id="NL-PEE",
            )
        )
    assert hub.types() == []  # nothing recorded: refused before the invitation


# --- bad input: refused, nothing recorded ----------------------------------------------


def test_a_221_credentials_object_at_the_211_endpoint_is_refused(hub: Hub) -> None:
    hub.invite("token-a")
    body = {
        "token": "peer-b",
        "url": f"{PEER}/versions",
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": "Peer"},
                "party_id": "PEE",
                "country_code": "NL",
            }
        ],
    }
    resp = hub.client.post("/ocpi/2.1.1/credentials", headers=raw("token-a"), json=body)
    assert resp.json()["status_code"] == 2001, resp.text
    assert "party_id" in resp.json()["status_message"]
    wrong_way = hub.client.post(
        "/ocpi/2.2.1/credentials", headers=b64("token-a"), json=theirs_211()
    )
    assert wrong_way.json()["status_code"] == 2001
    assert "roles" in wrong_way.json()["status_message"]
    assert hub.types() == ["PartnerInvited"]
    assert hub.peer.calls == []


def test_a_221_partners_raw_token_on_a_221_route_is_refused(hub: Hub) -> None:
    hub.peer.offers = ["2.2.1"]
    hub.invite("token-a")
    body = theirs_211()
    del body["business_details"], body["party_id"], body["country_code"]
    body["roles"] = [
        {"role": "CPO", "business_details": {"name": "P"}, "party_id": "PEE", "country_code": "NL"}
    ]
    token_c = hub.client.post("/ocpi/2.2.1/credentials", headers=b64("token-a"), json=body).json()[
        "data"
    ]["token"]
    resp = hub.client.get("/ocpi/cpo/2.2.1/locations", headers=raw(token_c))
    assert resp.status_code == 401
    assert "base64" in resp.json()["status_message"]


# --- the pure parts ----------------------------------------------------------------------


def test_highest_common_orders_versions_as_numbers() -> None:
    assert highest_common(("2.1.1", "2.2.1"), ["2.1.1", "2.2.1", "2.3.0"]) == "2.2.1"
    assert highest_common(("2.1.1", "2.2.1"), ["2.1.1", "2.0"]) == "2.1.1"
    assert highest_common(("2.2.1",), ["2.1.1"]) is None
    assert highest_common(("2.2.1", "2.10"), ["2.10", "2.2.1"]) == "2.10"


async def test_discover_picks_the_highest_common_version() -> None:
    peer = Peer(offers=["2.1.1", "2.2.1"])
    found = await discover(peer, f"{PEER}/versions", "t", offered=("2.1.1", "2.2.1"))
    assert found[0] == "2.2.1"
    only = await discover(peer, f"{PEER}/versions", "t", offered=("2.1.1",), partner_role=Role.EMSP)
    assert only[0] == "2.1.1"
    with pytest.raises(UnsupportedVersionError, match=r"we speak 2\.2\.1"):
        await discover(Peer(offers=["2.1.1"]), f"{PEER}/versions", "t", offered=("2.2.1",))
    assert issubclass(UnsupportedVersionError, PartnerCallError)


def test_the_211_adapter_reads_credentials_and_details_with_the_partners_role() -> None:
    v211 = wire("2.1.1")
    creds = v211.credentials_in(theirs_211(), Role.EMSP)
    assert [(r.role, r.country_code, r.party_id) for r in creds.roles] == [(Role.EMSP, "NL", "PEE")]
    both = v211.credentials_in(theirs_211(), None)
    assert [r.role for r in both.roles] == [Role.CPO, Role.EMSP]
    assert v211.credentials_out(creds) == {
        "token": "peer-b",
        "url": f"{PEER}/versions",
        "business_details": {"name": "Peer"},
        "party_id": "PEE",
        "country_code": "NL",
    }
    details = {
        "version": "2.1.1",
        "endpoints": [
            {"identifier": "locations", "url": f"{PEER}/loc"},
            {"identifier": "tokens", "url": f"{PEER}/tok"},
        ],
    }
    of_cpo = v211.details_in(details, Role.CPO).endpoints
    assert [(e.identifier, e.role) for e in of_cpo] == [
        ("locations", InterfaceRole.SENDER),
        ("tokens", InterfaceRole.RECEIVER),
    ]
    of_emsp = v211.details_in(details, Role.EMSP).endpoints
    assert [e.role for e in of_emsp] == [InterfaceRole.RECEIVER, InterfaceRole.SENDER]
    with pytest.raises(ValueError, match="no role"):
        v211.details_in(details, None)


# --- the 2.1.1 edge of Locations and Tokens (writes; reads are in tests/e2e) ------------


def registered_211(hub: Hub) -> str:
    """A 2.1.1 CPO registered with us; its token (sent as is)."""
    hub.invite("token-a")
    resp = hub.client.post("/ocpi/2.1.1/credentials", headers=raw("token-a"), json=theirs_211())
    token: str = resp.json()["data"]["token"]
    return token


def location_211(location_id: str = "L1") -> dict[str, Any]:
    return {
        "id": location_id,
        "type": "PARKING_LOT",
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511",
        "country": "NLD",
        "coordinates": {"latitude": "52.089444", "longitude": "5.110000"},
        "time_zone": "Europe/Amsterdam",
        "evses": [
            {
                "uid": "E1",
                "status": "AVAILABLE",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "voltage": 230,
                        "amperage": 16,
                        "tariff_id": "T1",
                        "last_updated": "2026-01-01T00:00:00Z",
                    }
                ],
                "last_updated": "2026-01-01T00:00:00Z",
            }
        ],
        "last_updated": "2026-01-01T00:00:00Z",
    }


RECEIVER_211 = "/ocpi/emsp/2.1.1/locations/NL/PEE"


def test_a_211_location_is_recorded_in_our_model(hub: Hub) -> None:
    token = registered_211(hub)
    put = hub.client.put(f"{RECEIVER_211}/L1", headers=raw(token), json=location_211())
    assert put.status_code == 201 and put.json()["status_code"] == 1000, put.text
    assert "OCPI-from-party-id" not in put.headers  # 2.1.1 has no routing headers
    recorded = hub.log.events[-1].payload.object  # type: ignore[attr-defined]
    assert (recorded["country_code"], recorded["party_id"], recorded["publish"]) == (
        "NL",
        "PEE",
        True,
    )
    assert recorded["parking_type"] == "PARKING_LOT" and "type" not in recorded
    [c] = recorded["evses"][0]["connectors"]
    assert (c["max_voltage"], c["max_amperage"], c["tariff_ids"]) == (230, 16, ["T1"])

    # A 2.1.1 PATCH may leave last_updated out.
    patched = hub.client.patch(
        f"{RECEIVER_211}/L1/E1", headers=raw(token), json={"status": "CHARGING"}
    )
    assert patched.json()["status_code"] == 1000, patched.text
    assert hub.types()[-1] == "LocationObjectPatched"


def test_objects_of_another_version_are_refused_and_nothing_recorded(hub: Hub) -> None:
    token = registered_211(hub)
    before = len(hub.log.events)
    ours_shape = {**location_211(), "country_code": "NL", "party_id": "PEE", "publish": True}
    del ours_shape["type"]
    refused = hub.client.put(f"{RECEIVER_211}/L1", headers=raw(token), json=ours_shape)
    assert refused.json()["status_code"] == 2001 and "type" in refused.json()["status_message"]
    # A 2.2.1 connector (max_voltage) at the 2.1.1 connector endpoint.
    connector_221 = {
        "id": "1",
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 16,
        "last_updated": "2026-01-01T00:00:00Z",
    }
    wrong = hub.client.put(f"{RECEIVER_211}/L1/E1/1", headers=raw(token), json=connector_221)
    assert wrong.json()["status_code"] == 2001 and "voltage" in wrong.json()["status_message"]
    # Another party's location, a version we do not serve.
    theirs = hub.client.put("/ocpi/emsp/2.1.1/locations/DE/XYZ/L1", headers=raw(token), json={})
    assert theirs.json()["status_code"] == 2001
    gone = hub.client.put("/ocpi/emsp/2.0/locations/NL/PEE/L1", headers=raw(token), json={})
    assert gone.json()["status_code"] == 3002
    assert len(hub.log.events) == before


def test_a_211_token_is_recorded_in_our_model(hub: Hub) -> None:
    token = registered_211(hub)
    body = {
        "uid": "RFID-1",
        "type": "OTHER",
        "auth_id": "NL-PEE-C1",
        "issuer": "Peer",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T00:00:00Z",
    }
    put = hub.client.put("/ocpi/cpo/2.1.1/tokens/NL/PEE/RFID-1", headers=raw(token), json=body)
    assert put.status_code == 201, put.text
    event = hub.log.events[-1]
    recorded = event.payload.token  # type: ignore[attr-defined]
    assert event.payload.type.value == "OTHER"  # type: ignore[attr-defined]  # from the body
    assert recorded["contract_id"] == "NL-PEE-C1" and "auth_id" not in recorded
    assert (recorded["country_code"], recorded["party_id"]) == ("NL", "PEE")
    # A 2.2.1 Token at the 2.1.1 endpoint lacks auth_id: refused, nothing recorded.
    count = len(hub.log.events)
    as_221 = {**body, "contract_id": "C", "country_code": "NL", "party_id": "PEE"}
    del as_221["auth_id"]
    refused = hub.client.put(
        "/ocpi/cpo/2.1.1/tokens/NL/PEE/RFID-2", headers=raw(token), json=as_221
    )
    assert refused.json()["status_code"] == 2001 and "auth_id" in refused.text
    assert len(hub.log.events) == count


def test_a_221_partner_does_not_use_the_211_routes(hub: Hub) -> None:
    hub.peer.offers = ["2.2.1"]
    hub.invite("token-a")
    body = {
        "token": "peer-b",
        "url": f"{PEER}/versions",
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": "P"},
                "party_id": "PEE",
                "country_code": "NL",
            }
        ],
    }
    token_c = hub.client.post("/ocpi/2.2.1/credentials", headers=b64("token-a"), json=body).json()[
        "data"
    ]["token"]
    other = hub.client.put(f"{RECEIVER_211}/L1", headers=raw(token_c), json=location_211())
    assert other.json()["status_code"] == 2000 and "registered for OCPI 2.2.1" in other.text
    assert hub.types() == ["PartnerInvited", "PartnerRegistered"]


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/ocpi/cpo/2.2.1/locations", ("2.2.1", "locations")),
        ("/ocpi/emsp/2.1.1/tokens/NL/ABC", ("2.1.1", "tokens")),
        # The one module whose paths have no role segment (2.3.0's hub client info):
        # its pulls were stamped as module "?" in the partner's pull stats.
        ("/ocpi/2.3.0/hubclientinfo", ("2.3.0", "hubclientinfo")),
        ("/ocpi/2.2.1", ("2.2.1", "")),
        ("/ocpi/versions", None),
        ("/ops/partners", None),
    ],
)
def test_an_ocpi_path_names_its_version_and_module(
    path: str, named: tuple[str, str] | None
) -> None:
    assert ocpi_version_and_module(path) == named
