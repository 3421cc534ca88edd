"""Our platform (ZZ-HUB) against an OCPI implementation not written here:
extrawest-ocpi 2025.7.16 (tests/peer/extrawest_app.py), party NL-XWP, playing
CPO and eMSP at once. What each exchange showed, and where that peer departs
from OCPI 2.2.1, is written up in docs/peers.md.

The tests run in order and build on each other (one registration, one
platform): the handshake, our pulls of its Sender interfaces, our pushes to
its Receivers, its pushes to ours, a charging session and its CDR at our
location with its token, and commands both ways.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.cdr_objects import issued_cdr, priced_location, simple_tariff
from tests.e2e.conftest import Platform, auth, cli_json, ops_auth, wait_for_log
from tests.e2e.test_received_commands import _register_charge_point
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import connector, evse, location
from tests.ocpi_sessions import session
from tests.peer.conftest import COUNTRY_CODE, PARTY_ID, Peer
from tests.tariff_objects import tariff_json
from tests.token_objects import token

pytestmark = pytest.mark.e2e

PARTNER = "XWP"  # our name for the peer
TAG = uuid.uuid4().hex[:6].upper()


@dataclass(frozen=True)
class Registered:
    us: Platform
    peer: Peer
    # The token the peer calls us with (we gave it), and the one we call it with.
    peer_calls_us: str
    we_call_peer: str

    def as_peer(self) -> dict[str, str]:
        return auth(self.peer_calls_us)

    def as_us(self) -> dict[str, str]:
        return auth(self.we_call_peer)

    def ops(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        resp = httpx.request(
            method,
            f"{self.us.base_url}{path}",
            json=body,
            timeout=20,
            headers=ops_auth(self.us.base_url),
        )
        assert resp.status_code in (200, 201), resp.text
        answer: dict[str, Any] = resp.json()
        assert answer["status_code"] == 1000, answer
        return answer


def _ok(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status_code"] == 1000, body
    return body["data"]


@pytest.fixture(scope="module")
def registered(platform: Platform, extrawest: Peer) -> Registered:
    """We register with the peer (credentials POST with its TOKEN_A): the
    library's credentials Receiver calls our versions and version details with
    the token we sent, then answers its own credentials."""
    answer = cli_json(
        platform, "partners", "register", "--versions-url", extrawest.versions_url,
        "--token-a", extrawest.token_a, "--partner-id", PARTNER,
    )  # fmt: skip
    assert answer["version"] == "2.2.1"
    [registration] = extrawest.partners()
    for process, ready in (("push", "push_lane_ready"), ("push", "cdrs_push_lane_ready")):
        wait_for_log(platform.logs / f"{process}.log", ready, PARTNER, timeout=60)
    return Registered(
        us=platform,
        peer=extrawest,
        peer_calls_us=registration["credentials"]["token"],
        we_call_peer=registration["token_c"],
    )


def test_we_register_with_the_peer(registered: Registered) -> None:
    [registration] = registered.peer.partners()
    ours = registration["credentials"]
    # It keeps our credentials; the library lowercases every CiString it parses.
    assert {(r["role"], r["country_code"], r["party_id"]) for r in ours["roles"]} == {
        ("CPO", "zz", "hub"),
        ("EMSP", "zz", "hub"),
    }
    assert ours["url"] == f"{registered.us.base_url}/ocpi/versions"
    # It read our version details with the token we gave it.
    modules = {(e["identifier"], e["role"]) for e in registration["endpoints"]["endpoints"]}
    assert ("locations", "RECEIVER") in modules and ("commands", "RECEIVER") in modules
    # What we recorded of it: both its roles, under its party.
    listed = registered.us.run("partners", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [ln for ln in listed.stdout.splitlines() if ln.startswith(PARTNER + "\t")]
    _, status, direction, version, roles = line.split("\t")
    assert version == "2.2.1"
    assert (status, direction) == ("registered", "outbound")
    assert {r.upper() for r in roles.split(",")} == {"CPO:NL-XWP", "EMSP:NL-XWP"}
    # The token it issued us opens its API: its credentials GET answers them.
    theirs = _ok(
        httpx.get(
            f"{registered.peer.base_url}/ocpi/cpo/2.2.1/credentials/",
            headers=registered.as_us(),
            timeout=10,
        )
    )
    assert theirs["token"] == registered.we_call_peer
    # ... and the TOKEN_A no longer registers anyone (its credentials POST with
    # a token A that was used stays open: see docs/peers.md).


def test_we_pull_its_locations_tariffs_and_tokens(registered: Registered) -> None:
    peer, us = registered.peer, registered.us
    loc, tid, uid = f"XL-{TAG}", f"XT-{TAG}", f"XK{TAG}"
    peer.own(
        "locations",
        loc,
        location(loc, country_code=COUNTRY_CODE, party_id=PARTY_ID,
                 evses=[evse("E1", connectors=[connector("1")])]),
    )  # fmt: skip
    peer.own(
        "tariffs",
        tid,
        json.loads(tariff_json(tid, country_code=COUNTRY_CODE, party_id=PARTY_ID)),
    )
    peer.own("tokens", uid, token(uid, country_code=COUNTRY_CODE, party_id=PARTY_ID))
    for module in ("locations", "tariffs", "tokens"):
        report = cli_json(us, "partners", f"sync-{module}", PARTNER)
        assert (report["recorded"], report["skipped"]) == (1, 0), (module, report)
    base = us.base_url
    got = wait_for(
        lambda: _get(f"{base}/ocpi/emsp/2.2.1/locations/NL/XWP/{loc}", registered.as_peer()),
        "its location in our receiver",
    )
    # It lowercases every CiString it serves, ids included (case-insensitive by the spec).
    assert got["evses"][0]["uid"].upper() == "E1"
    got = wait_for(
        lambda: _get(f"{base}/ocpi/emsp/2.2.1/tariffs/NL/XWP/{tid}", registered.as_peer()),
        "its tariff in our receiver",
    )
    assert got["currency"] == "EUR"
    got = wait_for(
        lambda: _get(f"{base}/ocpi/cpo/2.2.1/tokens/NL/XWP/{uid}", registered.as_peer()),
        "its token in our receiver",
    )
    assert got["whitelist"] == "ALWAYS"


def test_we_pull_its_sessions_and_cdrs(registered: Registered) -> None:
    """``sync-sessions`` and ``sync-cdrs`` against its CPO Sender lists: the
    session of a token of ours is recorded once and served by our receiver;
    its CDR lacks ``cdr_location.evse_uid`` (deviation 2), so the pull skips
    it as the receiver would refuse it, and records nothing."""
    peer, us = registered.peer, registered.us
    sid, cdr_id, uid = f"XS-{TAG}", f"XD-{TAG}", f"SK{TAG}"
    issued = token(uid, country_code="ZZ", party_id="HUB")
    registered.ops("PUT", f"/ops/tokens/{uid}", issued)
    cdr_token = {k: issued[k] for k in ("uid", "type", "country_code", "party_id", "contract_id")}
    now = datetime.now(UTC).replace(microsecond=0)
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    theirs = session(
        sid, country_code=COUNTRY_CODE, party_id=PARTY_ID, at=at, kwh=2, cdr_token=cdr_token
    )
    peer.own("sessions", sid, theirs)
    peer.own(
        "cdrs",
        cdr_id,
        {**issued_cdr(now).payload.cdr, "country_code": COUNTRY_CODE, "party_id": PARTY_ID,
         "id": cdr_id, "cdr_token": cdr_token, "last_updated": at},
    )  # fmt: skip
    since = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = (
        "--since",
        since,
        "--until",
        (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    report = cli_json(us, "partners", "sync-sessions", PARTNER, *window)
    assert (report["recorded"], report["unchanged"], report["skipped"]) == (1, 0, 0), report
    got = wait_for(
        lambda: _get(f"{us.base_url}/ocpi/emsp/2.2.1/sessions/NL/XWP/{sid}", registered.as_peer()),
        "its session in our receiver",
    )
    assert (got["kwh"], got["cdr_token"]["uid"].upper()) == (2, uid)
    again = cli_json(us, "partners", "sync-sessions", PARTNER, *window)
    assert (again["recorded"], again["unchanged"]) == (0, 1), again

    pulled = us.run("partners", "sync-cdrs", PARTNER, *window)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    report = json.loads(pulled.stdout.strip().splitlines()[-1])
    assert (report["recorded"], report["skipped"]) == (0, 1), report
    # Our reason names the CDR and the invalid field: the evse_uid it leaves out.
    # (ids are case-insensitive, and held folded)
    reason = f"{cdr_id}: invalid cdr_location.evse_uid".lower()
    assert reason in pulled.stderr.lower(), pulled.stderr


def _get(url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    resp = httpx.get(url, headers=headers, timeout=10)
    if resp.status_code != 200 or resp.json().get("status_code") != 1000:
        return None
    data: dict[str, Any] = resp.json()["data"]
    return data


def test_our_locations_tariffs_and_tokens_reach_it(registered: Registered) -> None:
    peer = registered.peer
    loc, tid, uid = f"OL-{TAG}", f"OT-{TAG}", f"OK{TAG}"
    registered.ops("PUT", f"/ops/tariffs/{tid}", json.loads(_dumps(simple_tariff(tid))))
    registered.ops("PUT", f"/ops/locations/{loc}", priced_location(loc, tariff_ids=[tid]))
    registered.ops("PUT", f"/ops/tokens/{uid}", token(uid, country_code="ZZ", party_id="HUB"))
    got = wait_for(
        lambda: peer.received("locations").get(f"ZZ/HUB/{loc}"), "our location at the peer"
    )
    assert [t.upper() for t in got["evses"][0]["connectors"][0]["tariff_ids"]] == [tid]
    got = wait_for(lambda: peer.received("tariffs").get(f"ZZ/HUB/{tid}"), "our tariff at the peer")
    assert [c["type"] for c in got["elements"][0]["price_components"]] == [
        "FLAT",
        "ENERGY",
        "TIME",
    ]
    got = wait_for(lambda: peer.received("tokens").get(f"ZZ/HUB/{uid}"), "our token at the peer")
    assert got["contract_id"].upper() == f"ZZ-HUB-C{uid[-4:]}"
    # A change of the location reaches it (a PATCH of the EVSE; the library
    # applies it to the object it holds).
    registered.ops(
        "PUT",
        f"/ops/locations/{loc}",
        {**priced_location(loc, tariff_ids=[tid]), "name": "Renamed"},
    )
    wait_for(
        lambda: (peer.received("locations").get(f"ZZ/HUB/{loc}") or {}).get("name") == "Renamed",
        "the renamed location at the peer",
    )


def _dumps(data: Any) -> str:
    return json.dumps(data, default=lambda d: float(d) if d % 1 else int(d))


def test_a_session_and_its_cdr_with_its_token_reach_it(registered: Registered) -> None:
    """Its token (pulled from its Tokens Sender, whitelist ALWAYS) charges at
    our location: our session and our CDR are pushed to its Receivers."""
    us, peer = registered.us, registered.peer
    uid, loc, tid, sid = f"XR{TAG}", f"SL-{TAG}", f"ST-{TAG}", f"OS-{TAG}"
    issued = token(uid, country_code=COUNTRY_CODE, party_id=PARTY_ID)
    peer.own("tokens", uid, issued)
    assert cli_json(us, "partners", "sync-tokens", PARTNER)["skipped"] == 0
    registered.ops("PUT", f"/ops/tariffs/{tid}", json.loads(_dumps(simple_tariff(tid))))
    registered.ops("PUT", f"/ops/locations/{loc}", priced_location(loc, tariff_ids=[tid]))
    wait_for(
        lambda: _get(f"{us.base_url}/ocpi/cpo/2.2.1/tokens/NL/XWP/{uid}", registered.as_peer()),
        "its token in our receiver",
    )

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    ids = {"location_id": loc, "evse_uid": "EVSE1", "connector_id": "1", "session_id": sid,
           "transaction_id": f"TX-{TAG}"}  # fmt: skip
    cdr_token = {k: issued[k] for k in ("uid", "type", "country_code", "party_id", "contract_id")}
    started = {"token": cdr_token, "authorized": True, "auth_method": "WHITELIST",
               "meter_start_wh": 1_000, "at": at(0)}  # fmt: skip
    registered.ops("POST", "/ops/chargers/transactions/started", {**ids, **started})
    registered.ops(
        "POST", "/ops/chargers/transactions/meter-values", {**ids, "meter_wh": 4_000, "at": at(10)}
    )
    registered.ops(
        "POST",
        "/ops/chargers/transactions/stopped",
        {**ids, "meter_stop_wh": 6_000, "at": at(20), "reason": "EVDisconnected"},
    )
    got = wait_for(
        lambda: _completed(peer.received("sessions").get(f"ZZ/HUB/{sid}")),
        "our COMPLETED session at the peer",
        timeout=60,
    )
    assert float(got["kwh"]) == pytest.approx(5.0)
    cdr = wait_for(
        lambda: next(
            (c for c in peer.received("cdrs").values() if str(c.get("session_id")).upper() == sid),
            None,
        ),
        "our CDR at the peer",
        timeout=60,
    )
    assert float(cdr["total_energy"]) == pytest.approx(5.0)
    assert cdr["cdr_token"]["uid"].upper() == uid and cdr["tariffs"][0]["id"].upper() == tid


def test_its_real_time_authorization_answer_is_a_list(registered: Registered) -> None:
    """Deviation (docs/peers.md): its authorize endpoint answers
    ``data: [AuthorizationInfo]`` where mod_tokens says one AuthorizationInfo
    object; we do not read a list as that object, so a token it issues with
    whitelist NEVER is not allowed at our chargers."""
    uid, loc = f"XN{TAG}", f"NL-{TAG}"
    issued = token(uid, country_code=COUNTRY_CODE, party_id=PARTY_ID, whitelist="NEVER")
    registered.peer.own("tokens", uid, issued)
    assert cli_json(registered.us, "partners", "sync-tokens", PARTNER)["skipped"] == 0
    raw = _ok(
        httpx.post(
            f"{registered.peer.base_url}/ocpi/emsp/2.2.1/tokens/{uid}/authorize",
            params={"type": "RFID"},
            json={"location_id": loc},
            headers=registered.as_us(),
            timeout=10,
        )
    )
    assert isinstance(raw, list) and raw[0]["allowed"] == "ALLOWED"
    registered.ops("PUT", f"/ops/locations/{loc}", priced_location(loc))
    wait_for(
        lambda: _get(
            f"{registered.us.base_url}/ocpi/cpo/2.2.1/tokens/NL/XWP/{uid}", registered.as_peer()
        ),
        "its token in our receiver",
    )
    resp = httpx.post(
        f"{registered.us.base_url}/ops/authorize",
        json={"uid": uid, "location_id": loc, "evse_uids": ["EVSE1"]},
        timeout=20,
        headers=ops_auth(registered.us.base_url),
    )
    assert (resp.json().get("data") or {}).get("allowed") != "ALLOWED", resp.text
    wait_for_log(
        registered.us.logs / "api.log",
        "real_time_authorization",
        '"partner": "XWP"',
        "not an AuthorizationInfo",
    )


def _completed(found: dict[str, Any] | None) -> dict[str, Any] | None:
    return found if found and found.get("status") == "COMPLETED" else None


def _push(registered: Registered, module: str, object_id: str) -> dict[str, Any]:
    """The library's own push (POST /push/2.2.1): it reads our version
    details, finds our Receiver of ``module`` and sends its object there."""
    resp = httpx.post(
        f"{registered.peer.base_url}/push/2.2.1",
        json={
            "module_id": module,
            "object_id": object_id,
            "receivers": [
                {
                    "endpoints_url": f"{registered.us.base_url}/ocpi/2.2.1",
                    "auth_token": registered.peer_calls_us,
                }
            ],
        },
        headers=registered.as_us(),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    [answer] = resp.json()["receiver_responses"]
    return dict(answer)


def test_its_cdr_push_lacks_evse_uid_and_we_refuse_it(registered: Registered) -> None:
    """Deviation (docs/peers.md): the library's CdrLocation has no
    ``evse_uid`` (required, mod_cdrs CdrLocation), so every CDR it serves or
    pushes lacks it. Its push (POST to our CDRs Receiver, found through our
    version details) is answered 2001 naming the field, and nothing is kept."""
    now = datetime.now(UTC)
    ours = issued_cdr(now).payload.cdr
    cdr_id, uid = f"XC-{TAG}", f"CK{TAG}"
    issued = token(uid, country_code="ZZ", party_id="HUB")
    registered.ops("PUT", f"/ops/tokens/{uid}", issued)
    theirs = {
        **ours,
        "country_code": COUNTRY_CODE,
        "party_id": PARTY_ID,
        "id": cdr_id,
        "cdr_token": {k: issued[k] for k in ("uid", "type", "country_code", "party_id")}
        | {"contract_id": issued["contract_id"]},
    }
    registered.peer.own("cdrs", cdr_id, theirs)
    answer = _push(registered, "cdrs", cdr_id)
    # The library keeps only the headers of a CDR push's answer: no Location,
    # so no CDR was created.
    assert answer["status_code"] == 200, answer
    assert "location" not in answer["response"], answer
    # Other tests of the tier seed CDRs at the same peer: this one is ours.
    [served] = [
        c
        for c in _ok(
            httpx.get(
                f"{registered.peer.base_url}/ocpi/cpo/2.2.1/cdrs/",
                headers=registered.as_us(),
                timeout=10,
            )
        )
        if str(c["id"]).lower() == cdr_id.lower()
    ]
    assert "evse_uid" not in served["cdr_location"]
    again = httpx.post(
        f"{registered.us.base_url}/ocpi/emsp/2.2.1/cdrs",
        json=served,
        headers=registered.as_peer(),
        timeout=10,
    ).json()
    assert again["status_code"] == 2001
    assert "cdr_location.evse_uid" in again["status_message"]
    # With the field it left out, the same CDR is taken.
    fixed = {**served, "cdr_location": {**served["cdr_location"], "evse_uid": "EVSE1"}}
    taken = httpx.post(
        f"{registered.us.base_url}/ocpi/emsp/2.2.1/cdrs",
        json=fixed,
        headers=registered.as_peer(),
        timeout=10,
    )
    assert taken.json()["status_code"] == 1000, taken.text
    assert taken.headers["Location"].endswith(f"/{served['id']}")


@pytest.mark.parametrize("module", ["locations", "sessions", "tariffs"])
def test_its_put_pushes_miss_our_receivers(registered: Registered, module: str) -> None:
    """Deviation (docs/peers.md): the library joins the Receiver URL and
    ``CC/PID/ID`` without the '/' between them, so its PUT pushes reach a path
    no OCPI party serves (``.../locationsNL/XWP/ID``). This test fails the day
    the library stops doing that, so that the doc is updated."""
    object_id = f"XP-{module[:3].upper()}-{TAG}"
    objects = {
        "locations": location(object_id, country_code=COUNTRY_CODE, party_id=PARTY_ID),
        "sessions": {**session(object_id), "country_code": COUNTRY_CODE, "party_id": PARTY_ID},
        "tariffs": json.loads(tariff_json(object_id, country_code=COUNTRY_CODE, party_id=PARTY_ID)),
    }
    registered.peer.own(module, object_id, objects[module])
    answer = _push(registered, module, object_id)
    assert answer["status_code"] == 404, answer
    # ... and we hold nothing of it.
    base = registered.us.base_url
    url = f"{base}/ocpi/emsp/2.2.1/{module}/{COUNTRY_CODE}/{PARTY_ID}/{object_id}"
    assert httpx.get(url, headers=registered.as_peer(), timeout=10).json()["status_code"] != 1000


def test_it_offers_no_commands_receiver_so_we_cannot_command_it(registered: Registered) -> None:
    """Deviation (docs/peers.md): as CPO the library serves
    ``POST /ocpi/cpo/2.2.1/commands/{command}``, but its version details list
    commands only as the eMSP's SENDER, never a RECEIVER; a party finds
    endpoints only there, so we refuse to send it a command, in words."""
    details = _ok(
        httpx.get(
            f"{registered.peer.base_url}/ocpi/2.2.1/details",
            headers=registered.as_us(),
            timeout=10,
        )
    )
    commands = [e for e in details["endpoints"] if e["identifier"] == "commands"]
    assert [(e["role"], "/emsp/" in e["url"]) for e in commands] == [("SENDER", True)]
    uid = f"CM{TAG}"
    resp = httpx.post(
        f"{registered.us.base_url}/ops/commands/sent/{PARTNER}/START_SESSION",
        json={"token": token(uid, country_code="ZZ", party_id="HUB"), "location_id": f"XL-{TAG}",
              "evse_uid": "E1"},
        timeout=20,
        headers=ops_auth(registered.us.base_url),
    )  # fmt: skip
    assert resp.status_code == 409, resp.text
    assert "no commands receiver" in resp.json()["status_message"]
    assert registered.peer.commands()["received"] == []


def test_its_command_to_our_location_gets_our_result(registered: Registered) -> None:
    """It (eMSP) sends START_SESSION to our Commands Receiver (the library has
    no command sender: the test posts with its token, the body the library's
    StartSession model would make); our CommandResult reaches the library's
    Commands Receiver at its response_url."""
    us, peer = registered.us, registered.peer
    loc = f"CL-{TAG}"
    registered.ops("PUT", f"/ops/locations/{loc}", priced_location(loc))
    _register_charge_point(us, us.namespace, loc, f"CP-{TAG}")
    command_uid = uuid.uuid4().hex
    body = {
        "response_url": f"{peer.base_url}/ocpi/emsp/2.2.1/commands/{command_uid}",
        "token": token(f"XS{TAG}", country_code=COUNTRY_CODE, party_id=PARTY_ID),
        "location_id": loc,
        "evse_uid": "EVSE1",
    }
    answer = _ok(
        httpx.post(
            f"{us.base_url}/ocpi/cpo/2.2.1/commands/START_SESSION",
            json=body,
            headers=registered.as_peer(),
            timeout=10,
        )
    )
    assert answer["result"] == "ACCEPTED"
    # No charger answers here: the result is our TIMEOUT, once.
    got = wait_for(
        lambda: peer.commands()["results"].get(command_uid),
        "our CommandResult at its receiver",
        timeout=answer["timeout"] + 30,
    )
    assert got["result"] == "TIMEOUT"
