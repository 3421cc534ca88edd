"""Credentials registration both ways between two running platforms
(credentials.asciidoc): TOKEN_A → TOKEN_B → TOKEN_C, rotation and
unregistration, with the spec's 401 and 405 answers on the way."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ocpi_hub.settings import Settings
from tests.conftest import fresh_namespace
from tests.e2e.conftest import Platform, auth, cli_json, running_platform, sealed_token
from tests.peer_stub import peer_stub


def partner_list(platform: Platform) -> list[list[str]]:
    result = platform.run("partners", "list")
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.strip().splitlines()]


def test_a_partner_registers_with_us(platform: Platform, peer_platform: Platform) -> None:
    invite = cli_json(
        platform, "partners", "invite", "--country-code", "NL", "--party-id", "PEE", "--role", "CPO"
    )
    assert invite["partner_id"] == "NL-PEE"
    versions = invite["versions_url"]
    assert httpx.get(versions).status_code == 401  # no token
    unknown = httpx.get(versions, headers=auth("not-a-token"))
    assert unknown.status_code == 401 and unknown.json()["status_code"] == 2000
    with_a = httpx.get(versions, headers=auth(invite["token_a"]))
    # Highest first: 2.3.0 (the peer, pinned to 2.1.1 and 2.2.1, registers on 2.2.1).
    assert with_a.status_code == 200 and with_a.json()["data"][0]["version"] == "2.3.0"

    # The peer registers with us using TOKEN_A (it POSTs its credentials; we
    # fetch its endpoints with its TOKEN_B and answer with a TOKEN_C).
    registered = cli_json(
        peer_platform,
        "partners",
        "register",
        "--versions-url",
        versions,
        "--token-a",
        invite["token_a"],
        "--partner-id",
        "HUB",
    )
    assert {(r["role"], r["country_code"], r["party_id"]) for r in registered["roles"]} == {
        ("CPO", "ZZ", "HUB"),
        ("EMSP", "ZZ", "HUB"),
    }
    assert httpx.get(versions, headers=auth(invite["token_a"])).status_code == 401  # A is spent
    token_c = sealed_token(peer_platform, "HUB")
    assert httpx.get(versions, headers=auth(token_c)).status_code == 200
    assert ["NL-PEE", "registered", "inbound", "2.2.1", "CPO:NL-PEE,EMSP:NL-PEE"] in partner_list(
        platform
    )

    credentials_url = f"{platform.base_url}/ocpi/2.2.1/credentials"
    ours = httpx.get(credentials_url, headers=auth(token_c)).json()["data"]
    assert ours["token"] == token_c and ours["url"] == versions

    # A second POST is refused: registered already (HTTP 405).
    peer_roles = [
        {
            "role": role,
            "business_details": {"name": "Peer platform"},
            "party_id": "PEE",
            "country_code": "NL",
        }
        for role in ("CPO", "EMSP")
    ]
    peer_creds = {
        "token": "x" * 20,
        "url": f"{peer_platform.base_url}/ocpi/versions",
        "roles": peer_roles,
    }
    again = httpx.post(credentials_url, headers=auth(token_c), json=peer_creds)
    assert again.status_code == 405

    # Rotation: PUT with the peer's current token B; we re-fetch its endpoints
    # and answer with a new token; the old one stops working.
    token_b = sealed_token(platform, "NL-PEE")
    rotated = httpx.put(
        credentials_url,
        headers=auth(token_c),
        json={**peer_creds, "token": token_b},
        timeout=30,
    )
    assert rotated.status_code == 200, rotated.text
    new_c = rotated.json()["data"]["token"]
    assert new_c != token_c
    assert httpx.get(versions, headers=auth(token_c)).status_code == 401
    assert httpx.get(versions, headers=auth(new_c)).status_code == 200

    # Unregistration: DELETE, then nothing works any more; a second DELETE has
    # no token left to be made with.
    assert httpx.delete(credentials_url, headers=auth(new_c)).status_code == 200
    assert httpx.get(versions, headers=auth(new_c)).status_code == 401
    assert ["NL-PEE", "unregistered", "inbound", "2.2.1", "CPO:NL-PEE,EMSP:NL-PEE"] in partner_list(
        platform
    )


def test_we_register_with_a_partner(platform: Platform, peer_platform: Platform) -> None:
    invite = cli_json(
        peer_platform,
        "partners",
        "invite",
        "--country-code",
        "ZZ",
        "--party-id",
        "HUB",
        "--role",
        "EMSP",
        "--partner-id",
        "OUR-HUB",
    )
    registered = cli_json(
        platform,
        "partners",
        "register",
        "--versions-url",
        invite["versions_url"],
        "--token-a",
        invite["token_a"],
        "--partner-id",
        "PEER",
    )
    assert {r["party_id"] for r in registered["roles"]} == {"PEE"}
    assert registered["version"] == "2.2.1"
    # The token the peer gave us works there; the peer's TOKEN_A does not.
    token_c = sealed_token(platform, "PEER")
    peer_versions = invite["versions_url"]
    assert httpx.get(peer_versions, headers=auth(token_c)).status_code == 200
    assert httpx.get(peer_versions, headers=auth(invite["token_a"])).status_code == 401
    assert ["OUR-HUB", "registered", "inbound", "2.2.1", "CPO:ZZ-HUB,EMSP:ZZ-HUB"] in partner_list(
        peer_platform
    )

    # We rotate: a credentials PUT towards the peer with a new token for it to
    # call us with; it answers with a new token for us.
    our_versions = f"{platform.base_url}/ocpi/versions"
    their_old = sealed_token(peer_platform, "OUR-HUB")
    assert httpx.get(our_versions, headers=auth(their_old)).status_code == 200
    updated = cli_json(platform, "partners", "update", "PEER")
    assert updated["version"] == "2.2.1"
    their_new = sealed_token(peer_platform, "OUR-HUB")
    assert their_new != their_old
    assert httpx.get(our_versions, headers=auth(their_old)).status_code == 401
    assert httpx.get(our_versions, headers=auth(their_new)).status_code == 200
    ours_new = sealed_token(platform, "PEER")
    assert ours_new != token_c
    assert httpx.get(peer_versions, headers=auth(token_c)).status_code == 401
    assert httpx.get(peer_versions, headers=auth(ours_new)).status_code == 200

    # We unregister: a credentials DELETE towards the peer, then on our side.
    assert cli_json(platform, "partners", "unregister", "PEER")["status"] == "unregistered"
    assert httpx.get(peer_versions, headers=auth(ours_new)).status_code == 401
    assert [
        "OUR-HUB",
        "unregistered",
        "inbound",
        "2.2.1",
        "CPO:ZZ-HUB,EMSP:ZZ-HUB",
    ] in partner_list(peer_platform)
    assert "unregistered" in dict((row[0], row[1]) for row in partner_list(platform))["PEER"]
    again = platform.run("partners", "unregister", "PEER")
    assert again.returncode == 1 and "not a registered partner" in again.stderr


def test_a_bad_versions_url_is_3001_and_records_nothing(platform: Platform) -> None:
    invite = cli_json(
        platform, "partners", "invite", "--country-code", "DE", "--party-id", "BAD", "--role", "CPO"
    )
    body = {
        "token": "abc" * 10,
        "url": "http://127.0.0.1:1/ocpi/versions",
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": "Bad"},
                "party_id": "BAD",
                "country_code": "DE",
            }
        ],
    }
    resp = httpx.post(
        f"{platform.base_url}/ocpi/2.2.1/credentials", headers=auth(invite["token_a"]), json=body
    )
    assert resp.status_code == 200 and resp.json()["status_code"] == 3001
    assert ["DE-BAD", "invited", "-", "-", "-"] in partner_list(platform)
    # TOKEN_A still works: the registration did not happen.
    assert httpx.get(invite["versions_url"], headers=auth(invite["token_a"])).status_code == 200


@pytest.fixture(scope="module")
def two_workers(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform whose API runs as two worker processes behind one port."""
    with (
        fresh_namespace(services) as ns,
        running_platform(ns, tmp_path_factory.mktemp("two-workers-logs"), api_workers=2) as p,
    ):
        yield p


def test_a_rotated_token_is_refused_by_every_api_worker_at_once(two_workers: Platform) -> None:
    """Each request on a new connection, so the two workers share them; each
    worker caches the partner behind a token (docs/adr/0024)."""
    versions = f"{two_workers.base_url}/ocpi/versions"
    credentials_url = f"{two_workers.base_url}/ocpi/2.2.1/credentials"

    def answers(token: str, n: int = 40) -> set[int]:
        return {httpx.get(versions, headers=auth(token)).status_code for _ in range(n)}

    invite = cli_json(
        two_workers, "partners", "invite", "--country-code", "NL", "--party-id", "TWO",
        "--role", "CPO",
    )  # fmt: skip
    with peer_stub("NL", "TWO") as stub:
        token_c = stub.register_with(invite["versions_url"], invite["token_a"])
        assert answers(invite["token_a"]) == {401}
        assert answers(token_c) == {200}  # now cached by both workers
        theirs = {
            "token": stub.token_b,
            "url": stub.versions_url,
            "roles": [
                {
                    "role": "CPO",
                    "business_details": {"name": "Peer stub"},
                    "party_id": "TWO",
                    "country_code": "NL",
                }
            ],
        }
        rotated = httpx.put(credentials_url, headers=auth(token_c), json=theirs, timeout=30)
        assert rotated.json()["status_code"] == 1000, rotated.text
        new_c = rotated.json()["data"]["token"]
        assert answers(token_c) == {401}
        assert answers(new_c) == {200}
        assert httpx.delete(credentials_url, headers=auth(new_c)).status_code == 200
        assert answers(new_c) == {401}
