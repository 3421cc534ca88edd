"""``ocpi-hub partners sync-sessions`` and ``sync-cdrs`` between two platforms
(docs/adr/0042): the peer (NL-PEE) is the CPO, we (ZZ-HUB) the eMSP.

The peer's charger runs a session billed to a token of ours that we have not
issued yet, so the peer's pushes of the session and of its CDR are refused
(2004, unknown token) and not repeated: the pull is how we catch up, as it
would be after any lost push. Once our ops issue the token, the two commands
crawl the peer's Sender lists (page size 4) through our write path; our
receivers then serve the session and the CDR exactly as the peer lists them,
and a second run records nothing new.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from schemas.events.cdrs import cdr_key
from schemas.events.sessions import session_key
from tests.cdr_objects import priced_location, simple_tariff
from tests.e2e.conftest import Linked, Platform, auth, ops_auth, sealed_token, wait_for_log
from tests.e2e.test_charger_path import _events
from tests.e2e.test_money_path import _dumps
from tests.e2e.test_walking_skeleton import wait_for
from tests.token_objects import token as token_object

# What a lane logs once it is done with a change (nothing more is sent for it).
_DONE = {
    "push_delivered",
    "push_rejected",
    "push_not_repaired",
    "push_repaired",
    "push_repair_rejected",
    "push_abandoned",
}

# The changes of a session the peer's sessions lanes send (processors/session_push.py).
SESSION_PUSHED = {"SessionPut", "SessionPatched"}


def _ok(resp: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert body["status_code"] == 1000, resp.text
    return body


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _push_outcome(peer: Platform, module: str, event_id: str) -> str | None:
    """How the peer's lane to us ended with one event (``None``: not yet)."""
    path = peer.logs / "push.log"
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if (
            entry.get("module") == module
            and entry.get("partner_id") == "HUB-LINK"
            and entry.get("event_id") == event_id
            and entry.get("event") in _DONE
        ):
            return str(entry["event"])
    return None


def _last_pushed_event_id(peer: Platform, topic: str, key: str, types: set[str]) -> str:
    """The last event of ``key`` on the peer's topic of a type its lanes push."""

    def pushed(event: dict[str, Any]) -> bool:
        return event.get("aggregate_key") == key and event.get("event_type") in types

    found = asyncio.run(_events(peer, topic, pushed))
    assert found, f"no event of {key} on the peer's {topic}"
    return str(found[-1]["event_id"])


def _sync(linked: Linked, module: str, *args: str) -> dict[str, Any]:
    ran = linked.us.run("partners", f"sync-{module}", linked.peer_id, *args)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (report["partner_id"], report["module"]) == (linked.peer_id, module)
    return report


def _listed_at_peer(linked: Linked, module: str, object_id: str, since: str) -> dict[str, Any]:
    """The object as the peer's Sender list gives it to us (every page)."""
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))
    url: str | None = f"{linked.peer.base_url}/ocpi/cpo/2.2.1/{module}"
    params: dict[str, str] | None = {"date_from": since}
    while url is not None:
        resp = httpx.get(url, params=params, headers=ours_at_peer, timeout=10)
        params = None
        for item in _ok(resp)["data"]:
            if item["id"] == object_id:
                found: dict[str, Any] = item
                return found
        url = resp.links.get("next", {}).get("url")
    raise AssertionError(f"{module} {object_id} is not listed by the peer")


def test_sessions_and_cdrs_a_push_missed_are_pulled_once(linked: Linked) -> None:
    us, peer = linked.us.base_url, linked.peer.base_url
    tag = uuid.uuid4().hex[:6].upper()
    tid, loc, sid, uid = f"PT-{tag}", f"PLOC-{tag}", f"PS-{tag}", f"PULL{tag}"

    # The peer's ops: a tariff and a location whose connector references it.
    # Dated before the window test_tariffs.py lists at the same peer
    # (from 2026-04-01), so that test counts only its own tariffs.
    tariff = simple_tariff(tid, country_code="NL", party_id="PEE", at="2026-03-01T00:00:00Z")
    site = priced_location(loc, tariff_ids=[tid], country_code="NL", party_id="PEE")
    for path, body in ((f"tariffs/{tid}", tariff), (f"locations/{loc}", site)):
        made = httpx.put(
            f"{peer}/ops/{path}",
            json=json.loads(_dumps(body)),
            headers=ops_auth(peer),
            timeout=10,
        )
        _ok(made)
    for module in ("sessions", "cdrs"):
        wait_for_log(linked.peer.logs / "push.log", f"{module}_push_lane_ready", "HUB-LINK")

    # Our token, not issued yet: the peer's charger is told it is authorized.
    issued = token_object(uid, country_code="ZZ", party_id="HUB")
    cdr_token = {k: issued[k] for k in ("uid", "type", "country_code", "party_id", "contract_id")}
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    ids = {
        "location_id": loc,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": sid,
        "transaction_id": f"TX-{tag}",
    }

    def record(kind: str, body: dict[str, Any]) -> None:
        resp = httpx.post(
            f"{peer}/ops/chargers/transactions/{kind}",
            json={**ids, **body},
            headers=ops_auth(peer),
            timeout=10,
        )
        _ok(resp)

    record(
        "started",
        {"token": cdr_token, "authorized": True, "auth_method": "WHITELIST",
         "meter_start_wh": 1_000, "at": _stamp(start)},
    )  # fmt: skip
    record("meter-values", {"meter_wh": 4_500, "at": _stamp(start + timedelta(minutes=15))})
    record(
        "stopped",
        {"meter_stop_wh": 9_250, "at": _stamp(start + timedelta(minutes=30)),
         "reason": "EVDisconnected"},
    )  # fmt: skip

    # The peer builds the CDR; both pushes to us end refused (our token is
    # unknown to us), and a refused change is not sent again.
    since = _stamp(start - timedelta(minutes=5))
    wait_for(lambda: _listed_or_none(linked, "cdrs", sid, since), "the peer's CDR")
    pushed = (
        ("sessions", "ocpi.sessions.v1", session_key("NL", "PEE", sid), SESSION_PUSHED),
        ("cdrs", "ocpi.cdrs.v1", cdr_key("NL", "PEE", sid), {"CdrIssued"}),
    )
    for module, topic, key, types in pushed:
        last = _last_pushed_event_id(linked.peer, topic, key, types)
        outcome = wait_for(
            lambda m=module, e=last: _push_outcome(linked.peer, m, e),  # type: ignore[misc]
            f"the peer's {module} lane done with {sid}",
        )
        assert outcome != "push_delivered", f"the {module} push was not refused: {outcome}"
    session_url = f"{us}/ocpi/emsp/2.2.1/sessions/NL/PEE/{sid}"
    cdr_url = f"{us}/ocpi/emsp/2.2.1/cdrs/{sid}"
    for url in (session_url, cdr_url):
        assert httpx.get(url, headers=linked.peer_token, timeout=10).status_code == 404

    # Our ops issue the token now (the pulled objects are judged against it).
    _ok(httpx.put(f"{us}/ops/tokens/{uid}", json=issued, headers=ops_auth(us), timeout=10))
    wait_for(
        lambda: (
            httpx.get(f"{us}/ops/tokens/{uid}", headers=ops_auth(us), timeout=10).status_code == 200
        ),
        "our token in our view",
    )

    # A range that ends before the session changed: nothing of it is pulled.
    early = ("--since", since, "--until", _stamp(start - timedelta(minutes=1)))
    for module in ("sessions", "cdrs"):
        report = _sync(linked, module, *early)
        assert (report["recorded"], report["unchanged"], report["skipped"]) == (0, 0, 0)

    # The range of the session: each recorded once.
    window = ("--since", since, "--until", _stamp(start + timedelta(hours=2)))
    for module in ("sessions", "cdrs"):
        report = _sync(linked, module, *window)
        assert (report["recorded"], report["unchanged"], report["skipped"]) == (1, 0, 0), report

    held_session = _listed_at_peer(linked, "sessions", sid, since)
    held_cdr = _listed_at_peer(linked, "cdrs", sid, since)
    assert held_session["status"] == "COMPLETED"
    assert held_session["cdr_token"] == cdr_token

    def served(url: str) -> dict[str, Any] | None:
        resp = httpx.get(url, headers=linked.peer_token, timeout=10)
        data: dict[str, Any] | None = resp.json().get("data") if resp.status_code == 200 else None
        return data

    assert wait_for(lambda: served(session_url), "the pulled session served") == held_session
    assert wait_for(lambda: served(cdr_url), "the pulled CDR served") == held_cdr

    # Our ops read the pulled CDR with its reconciliation.
    def reconciled() -> dict[str, Any] | None:
        resp = httpx.get(f"{us}/ops/cdrs/reconciliation", headers=ops_auth(us), timeout=10)
        rows = [r for r in _ok(resp)["data"] if r["cdr_key"] == f"NL/PEE/{sid.upper()}"]
        return rows[0] if rows and rows[0]["reconciliation"] else None

    assert wait_for(reconciled, "our reconciliation of the pulled CDR")["reconciliation"]

    # Again, in the same range and in the default one (the last 31 days, no
    # end): held as sent, nothing recorded.
    for module in ("sessions", "cdrs"):
        again = _sync(linked, module, *window)
        assert (again["recorded"], again["unchanged"], again["skipped"]) == (0, 1, 0), again
        default = _sync(linked, module)
        assert default["recorded"] == 0, default
        assert default["unchanged"] >= 1, default


def _listed_or_none(linked: Linked, module: str, object_id: str, since: str) -> bool:
    try:
        _listed_at_peer(linked, module, object_id, since)
    except AssertionError:
        return False
    return True


def test_a_sync_of_an_unknown_partner_fails_and_says_why(linked: Linked) -> None:
    for module in ("sessions", "cdrs"):
        ran = linked.us.run("partners", f"sync-{module}", "NO-SUCH-PARTNER")
        assert ran.returncode != 0
        assert "NO-SUCH-PARTNER is not a registered partner" in ran.stderr, ran.stderr
        assert ran.stdout.strip() == ""
