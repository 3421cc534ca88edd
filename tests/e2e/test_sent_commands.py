"""Sent commands (we as eMSP), over HTTP against the running platform (we are ZZ-HUB,
the eMSP).

The CPO is a stand-in (tests/peer_stub.py with a commands RECEIVER) that
registers with our platform through the credentials handshake, as a partner
CPO would. Our ops send START_SESSION; the stand-in receives it with our
response_url and our token for it, answers ACCEPTED with a timeout, and
later POSTs the CommandResult to our response_url with its own token; the
ops read shows the result. A START_SESSION that ends in TIMEOUT, followed by
the CPO's Session PUT for the same token, is accepted (OCPI issue #475).
Another registered partner posting a result for that command is told it is
unknown (2003).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Platform, auth, cli_json, ops_auth
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_sessions import session
from tests.peer_stub import PeerStub, peer_stub
from tests.token_objects import token


def _registered(platform: Platform, stack: ExitStack) -> tuple[PeerStub, str, str]:
    """A fresh stand-in CPO registered with us: (stub, our partner id, its token)."""
    party = "C" + secrets.token_hex(1).upper()
    partner_id = f"CMD-{party}-{uuid.uuid4().hex[:6]}"
    invite = cli_json(
        platform, "partners", "invite", "--country-code", "NL", "--party-id", party,
        "--role", "CPO", "--partner-id", partner_id,
    )  # fmt: skip
    stub = stack.enter_context(peer_stub("NL", party, commands=True))
    token_c = stub.register_with(invite["versions_url"], invite["token_a"])
    return stub, partner_id, token_c


@pytest.fixture(scope="module")
def cpos(platform: Platform) -> Iterator[list[tuple[PeerStub, str, str]]]:
    with ExitStack() as stack:
        yield [_registered(platform, stack), _registered(platform, stack)]


def _send(platform: Platform, partner_id: str, body: dict[str, Any]) -> dict[str, Any]:
    def sent() -> dict[str, Any] | None:
        resp = httpx.post(
            f"{platform.base_url}/ops/commands/sent/{partner_id}/START_SESSION",
            json=body,
            timeout=20,
            headers=ops_auth(platform.base_url),
        )
        answer: dict[str, Any] = resp.json()
        # Until the partners view holds the fresh registration: 404 / 409.
        return answer if resp.status_code == 200 else None

    answer: dict[str, Any] = wait_for(sent, "the partner known as a commands receiver")
    assert answer["status_code"] == 1000, answer
    return answer["data"]  # type: ignore[no-any-return]


def _status(platform: Platform, command_id: str, wanted: str) -> dict[str, Any]:
    def shown() -> dict[str, Any] | None:
        resp = httpx.get(
            f"{platform.base_url}/ops/commands/sent/{command_id}",
            timeout=10,
            headers=ops_auth(platform.base_url),
        )
        data = resp.json().get("data") if resp.status_code == 200 else None
        return data if data and data["status"] == wanted else None

    found: dict[str, Any] = wait_for(shown, f"command {command_id} {wanted}")
    return found


def _our_token(platform: Platform) -> dict[str, Any]:
    uid = f"CMD{uuid.uuid4().hex[:8].upper()}"
    issued = token(uid, country_code="ZZ", party_id="HUB")
    made = httpx.put(
        f"{platform.base_url}/ops/tokens/{uid}",
        json=issued,
        timeout=10,
        headers=ops_auth(platform.base_url),
    )
    assert made.json()["status_code"] == 1000, made.text
    return issued


def test_a_start_session_reaches_the_cpo_and_its_result_comes_back(
    platform: Platform, cpos: list[tuple[PeerStub, str, str]]
) -> None:
    (stub, partner_id, token_c), (_, _, other_token) = cpos
    issued = _our_token(platform)
    body = {"token": issued, "location_id": "LOC-CMD", "evse_uid": "EVSE1"}
    sent = _send(platform, partner_id, body)
    cid, url = sent["command_id"], sent["response_url"]
    assert sent["response"] == {"result": "ACCEPTED", "timeout": 30}
    assert url == f"{platform.base_url}/ocpi/emsp/2.2.1/commands/START_SESSION/{cid}"
    [(path, authorization, received)] = stub.commands_received
    assert path == "/commands/START_SESSION"
    assert authorization == auth(stub.token_b)["Authorization"]
    assert received["response_url"] == url and received["token"]["uid"] == issued["uid"]
    assert _status(platform, cid, "PENDING")["response"] == "ACCEPTED"

    # Another registered partner cannot post this command's result: unknown
    # to it, 2003 at HTTP 200 (docs/adr/0039 §2).
    stolen = httpx.post(url, json={"result": "FAILED"}, headers=auth(other_token), timeout=10)
    assert (stolen.status_code, stolen.json()["status_code"]) == (200, 2003), stolen.text

    # The CPO posts the charger's result with its own token.
    posted = httpx.post(url, json={"result": "ACCEPTED"}, headers=auth(token_c), timeout=10)
    assert (posted.status_code, posted.json()["status_code"]) == (200, 1000), posted.text
    shown = _status(platform, cid, "ACCEPTED")
    assert shown["partner_id"] == partner_id and shown["result"] == "ACCEPTED"
    # A repeat answers 1000 and the first result stands.
    again = httpx.post(url, json={"result": "FAILED"}, headers=auth(token_c), timeout=10)
    assert again.json()["status_code"] == 1000, again.text
    assert _status(platform, cid, "ACCEPTED")["result"] == "ACCEPTED"
    listed = httpx.get(
        f"{platform.base_url}/ops/commands/sent",
        params={"partner_id": partner_id},
        timeout=10,
        headers=ops_auth(platform.base_url),
    ).json()["data"]
    assert cid in [c["command_id"] for c in listed]


def test_a_session_after_a_timeout_is_accepted(
    platform: Platform, cpos: list[tuple[PeerStub, str, str]]
) -> None:
    stub, partner_id, token_c = cpos[0]
    issued = _our_token(platform)
    sent = _send(platform, partner_id, {"token": issued, "location_id": "LOC-CMD"})
    cid, url = sent["command_id"], sent["response_url"]
    posted = httpx.post(url, json={"result": "TIMEOUT"}, headers=auth(token_c), timeout=10)
    assert posted.json()["status_code"] == 1000, posted.text
    _status(platform, cid, "TIMEOUT")

    # The charger started after all: the CPO sends the session for our token.
    sid = f"AFTER-TIMEOUT-{uuid.uuid4().hex[:6]}"
    cdr_token = {k: issued[k] for k in ("country_code", "party_id", "uid", "type", "contract_id")}
    body = session(
        sid, country_code="NL", party_id=stub.party_id, cdr_token=cdr_token,
        location_id="LOC-CMD", auth_method="COMMAND",
    )  # fmt: skip
    session_url = f"{platform.base_url}/ocpi/emsp/2.2.1/sessions/NL/{stub.party_id}/{sid}"

    def put() -> httpx.Response | None:
        resp = httpx.put(session_url, json=body, headers=auth(token_c), timeout=10)
        return None if resp.json()["status_code"] == 2004 else resp  # our token not yet in view

    resp = wait_for(put, "our token known to the sessions receiver")
    assert (resp.status_code, resp.json()["status_code"]) == (201, 1000), resp.text
    got = httpx.get(session_url, headers=auth(token_c), timeout=10)
    assert got.json()["data"]["cdr_token"]["uid"] == issued["uid"]
