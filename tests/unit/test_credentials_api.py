"""The credentials module and the registration service on the in-memory
write path: the conversation with a partner both ways, the 401 and 405
answers of credentials.asciidoc, 3001/3002 when the partner's API cannot be
used, and that every step is decided and recorded through the write path
(the partner is found by its new token at once, with no view involved).

No services: the same flows run between two platforms in
tests/e2e/test_registration.py.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from api.app import create_app
from api.ocpi import credentials as credentials_api
from ocpi_hub.secrets import TokenVault, hash_token
from ocpi_hub.settings import Settings
from producers.credentials import CredentialsService, partners_in_log
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partner_client import HttpPartnerClient, PartnerCallError
from producers.partners import SLICE, NotAllowedError, PartnerState
from producers.write_path import WritePath
from schemas.events import (
    PartnerCredentialsUpdated,
    PartnerInvited,
    PartnerRegistered,
    PartnerUnregistered,
    Party,
)
from schemas.ocpi.credentials import BusinessDetails, Credentials, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint, InterfaceRole, Version, VersionDetails
from tests.ops_admin import as_admin

US = Party(country_code="ZZ", party_id="HUB")
PEER = "https://peer.example/ocpi"
URL = "/ocpi/2.2.1/credentials"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def peer_roles() -> list[CredentialsRole]:
    return [
        CredentialsRole(
            role=Role.CPO,
            business_details=BusinessDetails(name="Peer"),
            party_id="PEE",
            country_code="NL",
        )
    ]


@dataclass
class FakePartner:
    """A partner's OCPI API as the credentials service calls it."""

    version: str = "2.2.1"
    unreachable: bool = False
    refuse_put: bool = False
    # The token it hands us when we register or update with it.
    gives: list[str] = field(default_factory=lambda: ["their-token-1", "their-token-2"])
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    async def versions(self, url: str, token: str) -> list[Version]:
        self.calls.append(("versions", url, token))
        if self.unreachable:
            raise PartnerCallError("connection refused")
        return [Version(version=self.version, url=f"{PEER}/{self.version}")]  # type: ignore[arg-type]

    async def version_details(
        self, url: str, token: str, *, version: str = "2.2.1", partner_role: Role | None = None
    ) -> VersionDetails:
        self.calls.append(("details", url, token))
        endpoint = Endpoint(
            identifier="credentials",
            role=InterfaceRole.SENDER,
            url=f"{PEER}/2.2.1/credentials",  # type: ignore[arg-type]
        )
        return VersionDetails(version=self.version, endpoints=[endpoint])

    async def post_credentials(
        self, url: str, token: str, ours: Credentials, **_: object
    ) -> Credentials:
        self.calls.append(("post", url, token))
        return Credentials(token=self.gives.pop(0), url=f"{PEER}/versions", roles=peer_roles())  # type: ignore[arg-type]

    async def put_credentials(
        self, url: str, token: str, ours: Credentials, **_: object
    ) -> Credentials:
        self.calls.append(("put", url, token))
        if self.refuse_put:
            raise PartnerCallError("the partner answered 3001")
        return Credentials(token=self.gives.pop(0), url=f"{PEER}/versions", roles=peer_roles())  # type: ignore[arg-type]

    async def delete_credentials(self, url: str, token: str, **_: object) -> None:
        self.calls.append(("delete", url, token))


@dataclass
class Platform:
    client: TestClient
    log: InMemoryEventLog
    service: CredentialsService
    partner: FakePartner

    def invite(
        self,
        token_a: str,
        *,
        legacy: bool = False,
        partner_id: str = "NL-PEE",
        role: Role | None = Role.CPO,
    ) -> None:
        self.client.portal.call(  # type: ignore[union-attr]
            functools.partial(
                self.service.invite,
                partner_id=partner_id,
                country_code="NL",
                party_id="PEE",
                role=role,
                token_a_hash=hash_token(token_a),
                legacy_token=legacy,
                correlation_id="c",
            )
        )

    def types(self) -> list[str]:
        return [type(e).__name__ for e in self.log.events]


def service_on(path: WritePath, partner: FakePartner) -> CredentialsService:
    return CredentialsService(
        write_path=path,
        client=partner,
        vault=TokenVault(Fernet.generate_key()),
        us=US,
        business_name="Hub",
        versions_url="https://hub.example/ocpi/versions",
    )


@pytest.fixture
def platform() -> Iterator[Platform]:
    log = InMemoryEventLog()
    path = WritePath(log, InMemoryDecisionStore(), InMemoryLogHistory(log))
    partner = FakePartner()
    service = service_on(path, partner)
    app = create_app(
        Settings(party_country_code="ZZ", party_id="HUB"), event_log=log, write_path=path
    )
    app.dependency_overrides[credentials_api._service] = lambda: service
    with TestClient(app) as client:
        yield Platform(client, log, service, partner)


def theirs(token: str = "peer-token-b") -> dict[str, Any]:
    return {
        "token": token,
        "url": f"{PEER}/versions",
        "roles": [r.model_dump(mode="json") for r in peer_roles()],
    }


def test_a_partner_registers_rotates_and_unregisters(platform: Platform) -> None:
    api = platform.client
    platform.invite("token-a")
    assert api.get("/ocpi/versions").status_code == 401
    unknown = api.get("/ocpi/versions", headers=auth("nobody"))
    assert unknown.status_code == 401 and unknown.json()["status_code"] == 2000
    assert api.get("/ocpi/versions", headers=auth("token-a")).status_code == 200

    registered = api.post(URL, headers=auth("token-a"), json=theirs())
    assert registered.status_code == 200 and registered.json()["status_code"] == 1000
    token_c = registered.json()["data"]["token"]
    # We fetched their endpoints with the token they gave us.
    assert ("versions", f"{PEER}/versions", "peer-token-b") in platform.partner.calls
    # The next request already finds them by the new token; TOKEN_A is spent.
    assert api.get("/ocpi/versions", headers=auth("token-a")).status_code == 401
    assert api.get("/ocpi/versions", headers=auth(token_c)).status_code == 200
    assert api.get(URL, headers=auth(token_c)).json()["data"]["token"] == token_c
    assert platform.types() == ["PartnerInvited", "PartnerRegistered"]
    assert platform.log.events[1].source == Party(country_code="NL", party_id="PEE")

    again = api.post(URL, headers=auth(token_c), json=theirs())
    assert again.status_code == 405 and again.json()["status_code"] == 2000

    rotated = api.put(URL, headers=auth(token_c), json=theirs("peer-token-b2"))
    assert rotated.status_code == 200, rotated.text
    new_c = rotated.json()["data"]["token"]
    assert new_c != token_c
    assert api.get("/ocpi/versions", headers=auth(token_c)).status_code == 401
    assert api.get("/ocpi/versions", headers=auth(new_c)).status_code == 200
    update = platform.log.events[-1]
    assert isinstance(update, PartnerCredentialsUpdated)
    assert update.payload.their_token_hash == hash_token(new_c)

    assert api.delete(URL, headers=auth(new_c)).status_code == 200
    assert isinstance(platform.log.events[-1], PartnerUnregistered)
    assert api.get("/ocpi/versions", headers=auth(new_c)).status_code == 401
    assert api.delete(URL, headers=auth(new_c)).status_code == 401


def test_put_and_delete_with_token_a_are_405_and_record_nothing(platform: Platform) -> None:
    platform.invite("token-a")
    put = platform.client.put(URL, headers=auth("token-a"), json=theirs())
    assert put.status_code == 405 and put.json()["status_code"] == 2000
    assert platform.client.delete(URL, headers=auth("token-a")).status_code == 405
    assert platform.types() == ["PartnerInvited"]
    assert platform.partner.calls == []  # refused before calling them


def test_an_unreachable_partner_is_3001_and_registers_nothing(platform: Platform) -> None:
    platform.invite("token-a")
    platform.partner.unreachable = True
    resp = platform.client.post(URL, headers=auth("token-a"), json=theirs())
    assert resp.status_code == 200 and resp.json()["status_code"] == 3001
    assert platform.types() == ["PartnerInvited"]
    # TOKEN_A still works: the registration did not happen.
    assert platform.client.get("/ocpi/versions", headers=auth("token-a")).status_code == 200


def test_a_partner_without_our_version_is_3002(platform: Platform) -> None:
    platform.invite("token-a")
    platform.partner.version = "2.1.1"
    resp = platform.client.post(URL, headers=auth("token-a"), json=theirs())
    assert resp.json()["status_code"] == 3002
    assert platform.types() == ["PartnerInvited"]


def test_a_bad_credentials_object_is_2001_and_records_nothing(platform: Platform) -> None:
    platform.invite("token-a")
    resp = platform.client.post(URL, headers=auth("token-a"), json={**theirs(), "roles": []})
    assert resp.status_code == 200 and resp.json()["status_code"] == 2001
    not_json = platform.client.post(
        URL, headers={**auth("token-a"), "Content-Type": "application/json"}, content=b"{"
    )
    assert not_json.status_code == 400
    assert platform.types() == ["PartnerInvited"]


def test_a_test_hubs_credentials_with_211_leftovers_register(platform: Platform) -> None:
    # A published OCPI test hub sends party_id, country_code and
    # business_details at the top level too (OCPI 2.1.1): unknown fields in
    # 2.2.1, kept, never a reason to refuse (docs/adr/0039).
    platform.invite("token-a", role=Role.HUB)
    hub_role = {**peer_roles()[0].model_dump(mode="json"), "role": "HUB"}
    body = {
        **theirs(),
        "roles": [hub_role],
        "party_id": "PEE",
        "country_code": "NL",
        "business_details": {"name": "Peer"},
    }
    resp = platform.client.post(URL, headers=auth("token-a"), json=body)
    assert resp.status_code == 200 and resp.json()["status_code"] == 1000, resp.text
    assert platform.types() == ["PartnerInvited", "PartnerRegistered"]


@pytest.mark.parametrize("registered_as", [["HUB"], ["EMSP", "HUB"]])
def test_an_invite_for_a_role_registers_only_that_role(
    platform: Platform, registered_as: list[str]
) -> None:
    platform.invite("token-a")  # an invitation for role CPO
    roles = [
        {**peer_roles()[0].model_dump(mode="json"), "role": role, "party_id": f"PE{i}"}
        for i, role in enumerate(registered_as)
    ]
    resp = platform.client.post(URL, headers=auth("token-a"), json={**theirs(), "roles": roles})
    assert resp.status_code == 200 and resp.json()["status_code"] == 2001, resp.text
    assert "CPO" in resp.json()["status_message"]
    assert platform.types() == ["PartnerInvited"]
    assert platform.partner.calls == []  # refused before calling them
    # The same partner registering as the invited role is welcome.
    ok = platform.client.post(URL, headers=auth("token-a"), json=theirs())
    assert ok.json()["status_code"] == 1000, ok.text


def test_a_legacy_partner_may_send_its_token_unencoded(platform: Platform) -> None:
    platform.invite("legacy-token-a", legacy=True)
    raw = {"Authorization": "Token legacy-token-a"}
    assert platform.client.get("/ocpi/versions", headers=raw).status_code == 200
    platform.invite("strict-token-a", partner_id="NL-STR")
    strict = {"Authorization": "Token strict-token-a"}
    refused = platform.client.get("/ocpi/2.2.1", headers=strict)
    assert refused.status_code == 401
    assert "base64" in refused.json()["status_message"]
    # Before it chose a version, a partner may be a 2.1.1 one (raw tokens):
    # its TOKEN_A opens the versions list and the 2.1.1 details either way.
    assert platform.client.get("/ocpi/versions", headers=strict).status_code == 200
    assert platform.client.get("/ocpi/2.1.1", headers=strict).status_code == 200


def test_a_new_invitation_replaces_token_a(platform: Platform) -> None:
    platform.invite("first")
    platform.invite("second")
    assert platform.client.get("/ocpi/versions", headers=auth("first")).status_code == 401
    assert platform.client.get("/ocpi/versions", headers=auth("second")).status_code == 200


def test_the_credentials_body_is_in_openapi(platform: Platform) -> None:
    spec = platform.client.get("/openapi.json").json()
    for method in ("post", "put"):
        operation = spec["paths"]["/ocpi/{version}/credentials"][method]
        body = operation["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"] == "#/components/schemas/Credentials"
    assert "Credentials" in spec["components"]["schemas"]


# --- we register with a partner (the `ocpi-hub partners` commands) ------------


@pytest.fixture
def outbound() -> tuple[CredentialsService, FakePartner, InMemoryEventLog]:
    log = InMemoryEventLog()
    path = WritePath(log, InMemoryDecisionStore(), InMemoryLogHistory(log))
    partner = FakePartner()
    return service_on(path, partner), partner, log


async def register_with_peer(service: CredentialsService) -> PartnerState:
    """We register as "PEER" with the partner, our token for it "ours-1"."""
    return await service.register_with(
        versions_url=f"{PEER}/versions",
        token_a="their-a",
        our_token="ours-1",
        our_token_hash=hash_token("ours-1"),
        partner_id="PEER",
    )


async def test_we_register_update_and_unregister_with_a_partner(
    outbound: tuple[CredentialsService, FakePartner, InMemoryEventLog],
) -> None:
    service, partner, log = outbound
    state = await register_with_peer(service)
    assert state.status == "registered" and state.direction == "outbound"
    assert [type(e) for e in log.events] == [PartnerInvited, PartnerRegistered]
    assert service.vault.decrypt(state.our_token_encrypted or "") == "their-token-1"
    # While we POSTed, the token we gave them already found the pending invite.
    assert await service.write_path.find(SLICE, hash_token("ours-1")) == state

    updated = await service.update_with(
        "PEER", new_token="ours-2", new_token_hash=hash_token("ours-2")
    )
    assert ("put", f"{PEER}/2.2.1/credentials", "their-token-1") in partner.calls
    assert service.vault.decrypt(updated.our_token_encrypted or "") == "their-token-2"
    assert updated.their_token_hash == hash_token("ours-2")
    assert await service.write_path.find(SLICE, hash_token("ours-1")) is None

    await service.unregister_with("PEER")
    assert ("delete", f"{PEER}/2.2.1/credentials", "their-token-2") in partner.calls
    assert isinstance(log.events[-1], PartnerUnregistered)
    with pytest.raises(LookupError, match="not a registered partner"):
        await service.unregister_with("PEER")
    listed = await partners_in_log(InMemoryLogHistory(log))
    assert [(p.partner_id, p.status) for p in listed] == [("PEER", "unregistered")]


async def test_a_failed_update_restores_the_old_token(
    outbound: tuple[CredentialsService, FakePartner, InMemoryEventLog],
) -> None:
    service, partner, _ = outbound
    await register_with_peer(service)
    partner.refuse_put = True
    with pytest.raises(PartnerCallError):
        await service.update_with("PEER", new_token="ours-2", new_token_hash=hash_token("ours-2"))
    state = await service.registered("PEER")
    assert state.their_token_hash == hash_token("ours-1")
    assert await service.write_path.find(SLICE, hash_token("ours-1")) == state
    assert await service.write_path.find(SLICE, hash_token("ours-2")) is None


async def test_a_registered_partner_is_not_invited_again(
    outbound: tuple[CredentialsService, FakePartner, InMemoryEventLog],
) -> None:
    service, _, _ = outbound
    await register_with_peer(service)
    with pytest.raises(NotAllowedError):
        await service.invite(
            partner_id="PEER",
            country_code="NL",
            party_id="PEE",
            role=Role.CPO,
            token_a_hash="x",
            legacy_token=False,
            correlation_id="c",
        )


# --- the same, from the ops API (the dashboard's partners page) -----------------------


def test_ops_invite_shows_token_a_once_and_it_registers(platform: Platform) -> None:
    api = platform.client
    as_admin(api.app)  # type: ignore[arg-type]
    answer = api.post("/ops/partners", json={"country_code": "nl", "party_id": "pee",
                                              "role": "CPO"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["partner_id"] == "NL-PEE" and data["versions_url"].endswith("/ocpi/versions")
    [invited] = platform.log.events
    assert isinstance(invited, PartnerInvited)
    # Only its hash is recorded, and the token works as TOKEN_A.
    assert invited.payload.token_a_hash == hash_token(data["token_a"])
    assert data["token_a"] not in invited.model_dump_json()
    assert api.get("/ocpi/versions", headers=auth(data["token_a"])).status_code == 200
    registered = api.post(URL, headers=auth(data["token_a"]), json=theirs())
    assert registered.json()["status_code"] == 1000


@pytest.mark.parametrize(
    "body",
    [
        {"country_code": "NLD", "party_id": "PEE", "role": "CPO"},
        {"country_code": "NL", "party_id": "PEE", "role": "KING"},
        {"country_code": "NL", "party_id": "PEE", "role": "CPO", "partner_id": "ops:me"},
        {"country_code": "NL", "party_id": "PEE", "role": "CPO", "token_a": "mine"},
    ],
)
def test_ops_invite_refuses_a_bad_invitation_and_records_nothing(
    platform: Platform, body: dict[str, Any]
) -> None:
    as_admin(platform.client.app)  # type: ignore[arg-type]
    answer = platform.client.post("/ops/partners", json=body)
    assert answer.json()["status_code"] == 2001, answer.text
    assert platform.log.events == []


def test_ops_rotate_and_unregister_of_an_unknown_partner_are_404(platform: Platform) -> None:
    as_admin(platform.client.app)  # type: ignore[arg-type]
    for answer in (
        platform.client.post("/ops/partners/NOPE/rotate"),
        platform.client.delete("/ops/partners/NOPE"),
    ):
        assert answer.status_code == 404 and answer.json()["status_code"] == 2001
    assert platform.log.events == []


def test_a_registration_with_a_loopback_versions_url_is_refused_when_private_urls_are_off(
    platform: Platform,
) -> None:
    # The real HTTP client, with the policy of a production deployment
    # (OCPI_HUB_URL_POLICY_ALLOW_PRIVATE off): the partner's versions URL on
    # loopback is never called, the registration is refused with 3001 and
    # nothing is recorded (docs/adr/0039).
    strict = service_on(platform.service.write_path, HttpPartnerClient(timeout_s=1))  # type: ignore[arg-type]
    platform.client.app.dependency_overrides[credentials_api._service] = lambda: strict  # type: ignore[attr-defined]
    platform.invite("token-a")
    body = {**theirs(), "url": "http://127.0.0.1:9/ocpi/versions"}
    resp = platform.client.post(URL, headers=auth("token-a"), json=body)
    assert resp.status_code == 200 and resp.json()["status_code"] == 3001, resp.text
    assert "loopback" in resp.json()["status_message"]
    assert platform.types() == ["PartnerInvited"]
    assert platform.client.get("/ocpi/versions", headers=auth("token-a")).status_code == 200
