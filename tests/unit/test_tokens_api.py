"""The HTTP shell of the Tokens module on the in-memory write path, with a
view that folds the fake log (the real fold, at the partitions Kafka would
use), so writes are read back as in production: envelopes, status codes,
ownership, the real-time authorize endpoint and the ops endpoints. No
services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller, caller, registered_caller
from api.deps import _authorization, _tokens
from ocpi_hub.settings import Settings
from producers.authorization import (
    AuthorizationService,
    InMemoryDecisionCache,
    RealTimeAnswer,
)
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.tokens import TokenState
from producers.write_path import WritePath, partition_for
from projections.mongo.folding import Doc
from projections.mongo.paging import Page
from projections.mongo.tokens import apply
from projections.position import Record
from schemas.events import Party, TokenAuthorizationDecided, TokenPatched, TokenPut
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.tokens import LocationReferences
from tests.ops_admin import as_admin
from tests.token_objects import token

RECEIVER = "/ocpi/cpo/2.2.1/tokens"
SENDER = "/ocpi/emsp/2.2.1/tokens"
PARTITIONS = 6  # InMemoryLogHistory's, as the write path places keys


class LogView:
    """The tokens view, folded from the fake log on every read."""

    def __init__(self, log: InMemoryEventLog) -> None:
        self._log = log
        # How many events the projection has applied (None: all of them).
        self.applied: int | None = None

    def _docs(self) -> dict[str, Doc]:
        docs: dict[str, Doc] = {}
        for offset, event in enumerate(self._log.events[: self.applied]):
            key = event.aggregate_key
            record = Record("ocpi.tokens.v1", partition_for(key, PARTITIONS), offset, event)
            if (doc := apply(docs.get(key), record)) is not None:
                docs[key] = doc
        return docs

    async def read(self, key: str) -> tuple[TokenState | None, dict[str, int]]:
        doc = self._docs().get(key)
        if doc is None:
            return None, {}
        return TokenState.model_validate(doc["state"]), dict(doc["_positions"])

    async def positions(self, key: str) -> dict[str, int]:
        return (await self.read(key))[1]

    async def page(self, *, country_code: str, party_id: str, limit: int, **_: Any) -> Page:
        docs = sorted(
            (
                d
                for d in self._docs().values()
                if (d["country_code"], d["party_id"]) == (country_code, party_id)
            ),
            key=lambda d: (d["_ts"], d["_id"]),
        )[:limit]
        return Page(items=[d["token"] for d in docs], total=len(docs), last=None)

    async def holders(
        self, uid: str, token_type: str, *, exclude_party: tuple[str, str] | None = None
    ) -> list[str]:
        return [
            key
            for key, d in self._docs().items()
            if (d["uid"], d["type"]) == (uid.upper(), token_type)
            and (d["country_code"], d["party_id"]) != exclude_party
        ]


def _partner() -> PartnerState:
    details = BusinessDetails(name="ABC Mobility")
    return PartnerState(
        partner_id="abc",
        status="registered",
        roles=(
            CredentialsRole(
                role=Role.EMSP, business_details=details, country_code="NL", party_id="ABD"
            ),
        ),
    )


class NoPartners:
    async def all(self) -> list[PartnerState]:
        return []


class Unreachable:
    async def authorize(self, url: str, **_: Any) -> RealTimeAnswer:
        return RealTimeAnswer("unreachable")


class Vault:
    def decrypt(self, sealed: str) -> str:
        return sealed


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def view(log: InMemoryEventLog) -> LogView:
    return LogView(log)


@pytest.fixture
def client(log: InMemoryEventLog, view: LogView) -> Iterator[TestClient]:
    write_path = WritePath(log, InMemoryDecisionStore(), InMemoryLogHistory(log, PARTITIONS))
    # A read that waits for a lagging view gives up quickly here.
    settings = Settings(party_country_code="ZZ", party_id="HUB", read_own_writes_timeout_s=0.3)
    app = create_app(settings, event_log=log, write_path=write_path)
    as_admin(app)
    app.dependency_overrides[registered_caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[_tokens] = lambda: view
    app.dependency_overrides[_authorization] = lambda: AuthorizationService(
        write_path=write_path,
        directory=view,
        partners=NoPartners(),
        realtime=Unreachable(),
        cache=InMemoryDecisionCache(),
        vault=Vault(),
        us=Party(country_code="ZZ", party_id="HUB"),
        cache_ttl_s=30,
    )
    with TestClient(app) as c:
        yield c


def _ok(resp: Any, http: int = 200) -> dict[str, Any]:
    assert resp.status_code == http, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status_code"] == 1000, body
    assert body["timestamp"].endswith("Z")
    return body


# --- Receiver (we as CPO) ---------------------------------------------------------


def test_a_partner_puts_gets_and_patches_its_token(
    client: TestClient, log: InMemoryEventLog
) -> None:
    url = f"{RECEIVER}/NL/ABD/04A1B2C3"
    _ok(client.put(url, json=token()), 201)
    assert isinstance(log.events[-1], TokenPut)
    assert log.events[-1].payload.type.value == "RFID"  # type defaults to RFID
    assert _ok(client.get(url))["data"] == token()
    _ok(client.put(url, json=token()), 200)  # a replacement, not a creation
    _ok(client.patch(url, json={"valid": False, "last_updated": "2026-03-02T00:00:00Z"}))
    assert isinstance(log.events[-1], TokenPatched)
    assert _ok(client.get(url))["data"]["valid"] is False
    # The answer carries the routing headers, from and to swapped.
    resp = client.get(url)
    assert (resp.headers["OCPI-from-party-id"], resp.headers["OCPI-to-party-id"]) == ("HUB", "ABD")


def test_the_type_parameter_names_another_token(client: TestClient) -> None:
    _ok(client.put(f"{RECEIVER}/NL/ABD/U1?type=APP_USER", json=token("U1", type="APP_USER")), 201)
    assert _ok(client.get(f"{RECEIVER}/NL/ABD/U1?type=APP_USER"))["data"]["type"] == "APP_USER"
    resp = client.get(f"{RECEIVER}/NL/ABD/U1")
    assert (resp.status_code, resp.json()["status_code"]) == (404, 2004)
    # Not a TokenType: the GET names a token that cannot exist (docs/adr/0039 §2).
    resp = client.get(f"{RECEIVER}/NL/ABD/U1?type=NFC")
    assert (resp.status_code, resp.json()["status_code"]) == (404, 2001)


def test_an_unknown_token_is_404_with_2004(client: TestClient) -> None:
    resp = client.get(f"{RECEIVER}/NL/ABD/NOPE")
    assert resp.status_code == 404
    assert resp.json()["status_code"] == 2004 and "data" not in resp.json()


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", f"{RECEIVER}/BE/XYZ/04A1B2C3", token(country_code="BE", party_id="XYZ")),
        ("PUT", f"{RECEIVER}/NL/ABD/04A1B2C3", token(uid="OTHER")),
        ("PUT", f"{RECEIVER}/NL/ABD/04A1B2C3", {**token(), "whitelist": "SOMETIMES"}),
        ("PUT", f"{RECEIVER}/NL/ABD/04A1B2C3?type=APP_USER", token()),
        ("PATCH", f"{RECEIVER}/NL/ABD/04A1B2C3", {"valid": False}),
    ],
)
def test_bad_writes_get_2001_and_write_nothing(
    client: TestClient, log: InMemoryEventLog, method: str, url: str, body: Any
) -> None:
    resp = client.request(method, url, json=body)
    assert (resp.status_code, resp.json()["status_code"]) == (200, 2001), resp.text
    assert log.events == []


def test_a_patch_of_a_token_we_do_not_hold_is_2004(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = client.patch(
        f"{RECEIVER}/NL/ABD/NEW1", json={"valid": False, "last_updated": "2026-03-02T00:00:00Z"}
    )
    assert resp.json()["status_code"] == 2004
    assert log.events == []


def test_an_unacknowledged_write_is_3000(client: TestClient, log: InMemoryEventLog) -> None:
    async def fail(events: Any, **_: Any) -> Any:
        raise TimeoutError

    log.append = fail  # type: ignore[method-assign]
    resp = client.put(f"{RECEIVER}/NL/ABD/04A1B2C3", json=token())
    assert resp.json()["status_code"] == 3000


# --- Sender and ops (we as eMSP) ---------------------------------------------------


def _issue(client: TestClient, uid: str = "OURS1", **kw: Any) -> None:
    body = token(uid, country_code="ZZ", party_id="HUB", **kw)
    _ok(client.put(f"/ops/tokens/{uid}", json=body), 201)


def test_ops_issue_our_tokens_and_partners_list_them(client: TestClient) -> None:
    _issue(client, "OURS1")
    _issue(client, "OURS2", at="2026-03-01T08:00:00Z")
    _ok(client.put(f"{RECEIVER}/NL/ABD/THEIRS", json=token("THEIRS")), 201)
    resp = client.get(SENDER)
    body = _ok(resp)
    assert [t["uid"] for t in body["data"]] == ["OURS2", "OURS1"]
    assert resp.headers["X-Total-Count"] == "2"
    assert _ok(client.get("/ops/tokens/OURS1"))["data"]["party_id"] == "HUB"
    # An ops write still has to name our party.
    resp = client.put("/ops/tokens/X9", json=token("X9"))
    assert resp.json()["status_code"] == 2001


def test_real_time_authorization_is_recorded_before_the_answer(
    client: TestClient, log: InMemoryEventLog
) -> None:
    _issue(client, "OURS1", whitelist="NEVER")
    refs = {"location_id": "LOC1", "evse_uids": ["E1", "E2"]}
    body = _ok(client.post(f"{SENDER}/OURS1/authorize?type=RFID", json=refs))
    info = body["data"]
    assert info["allowed"] == "ALLOWED"
    assert info["location"] == refs
    assert info["token"]["uid"] == "OURS1"
    decided = log.events[-1]
    assert isinstance(decided, TokenAuthorizationDecided)
    assert decided.payload.authorization_reference == info["authorization_reference"]
    assert decided.payload.requested == LocationReferences.model_validate(refs)
    assert decided.payload.requested_by == "abc"

    _ok(
        client.patch(
            "/ops/tokens/OURS1", json={"valid": False, "last_updated": "2026-03-05T00:00:00Z"}
        )
    )
    assert _ok(client.post(f"{SENDER}/OURS1/authorize"))["data"]["allowed"] == "BLOCKED"


def test_the_ops_policy_drives_the_answer(client: TestClient) -> None:
    _issue(client, "OURS1")
    _ok(client.put("/ops/tokens/OURS1/policy", json={"location_ids": ["LOC1"]}))
    outside = client.post(f"{SENDER}/OURS1/authorize", json={"location_id": "LOC2"})
    assert _ok(outside)["data"]["allowed"] == "NOT_ALLOWED"
    no_location = client.post(f"{SENDER}/OURS1/authorize")
    assert (no_location.status_code, no_location.json()["status_code"]) == (200, 2002)
    _ok(client.put("/ops/tokens/OURS1/policy", json={"state": "NO_CREDIT"}))
    assert _ok(client.post(f"{SENDER}/OURS1/authorize"))["data"]["allowed"] == "NO_CREDIT"
    bad = client.put("/ops/tokens/OURS1/policy", json={"state": "MAYBE"})
    assert bad.json()["status_code"] == 2001


def test_authorizing_an_unknown_token_is_404_with_2004_and_records_nothing(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = client.post(f"{SENDER}/NOPE/authorize", json={"location_id": "LOC1"})
    assert resp.status_code == 404
    assert resp.json()["status_code"] == 2004 and "data" not in resp.json()
    assert log.events == []


def test_a_bad_location_references_body_is_2001(client: TestClient) -> None:
    _issue(client, "OURS1")
    resp = client.post(f"{SENDER}/OURS1/authorize", json={"location_id": "L" * 37})
    assert (resp.status_code, resp.json()["status_code"]) == (200, 2001)


# --- ops authorize (we as CPO) ---------------------------------------------------------


def test_ops_authorize_decides_from_the_whitelist(client: TestClient) -> None:
    _ok(client.put(f"{RECEIVER}/NL/ABD/04A1B2C3", json=token(whitelist="ALWAYS")), 201)
    body = _ok(
        client.post(
            "/ops/authorize", json={"uid": "04a1b2c3", "location_id": "LOC1", "evse_uids": ["E1"]}
        )
    )
    assert body["data"]["authorized"] is True
    assert body["data"]["source"] == "whitelist"
    unknown = _ok(client.post("/ops/authorize", json={"uid": "NOPE", "location_id": "LOC1"}))
    assert unknown["data"] == {"authorized": False, "source": "unknown_token"}
    bad = client.post("/ops/authorize", json={"uid": "X", "type": "NFC", "location_id": "L"})
    assert bad.json()["status_code"] == 2001


def test_ops_authorize_of_our_own_token_is_decided_here_and_recorded(
    client: TestClient, log: InMemoryEventLog
) -> None:
    _issue(client, "OURS1", whitelist="NEVER")
    body = _ok(client.post("/ops/authorize", json={"uid": "OURS1", "location_id": "LOC1"}))
    assert (body["data"]["source"], body["data"]["allowed"]) == ("own_token", "ALLOWED")
    decided = log.events[-1]
    assert isinstance(decided, TokenAuthorizationDecided)
    assert decided.payload.authorization_reference == body["data"]["authorization_reference"]


def test_versions_publish_both_tokens_interfaces(client: TestClient) -> None:
    client.app.dependency_overrides[caller] = lambda: Caller(_partner(), "token-c", False)  # type: ignore[attr-defined]
    endpoints = _ok(client.get("/ocpi/2.2.1"))["data"]["endpoints"]
    tokens = {
        (e["role"], e["url"].split("/ocpi/")[1]) for e in endpoints if e["identifier"] == "tokens"
    }
    assert tokens == {("SENDER", "emsp/2.2.1/tokens"), ("RECEIVER", "cpo/2.2.1/tokens")}


def test_no_authorization_answer_without_the_decision_on_record(
    client: TestClient, log: InMemoryEventLog
) -> None:
    _issue(client, "OURS1")
    real_append = log.append

    async def fail(events: Any, **_: Any) -> Any:
        raise TimeoutError

    log.append = fail  # type: ignore[method-assign]
    resp = client.post(f"{SENDER}/OURS1/authorize", json={"location_id": "LOC1"})
    assert resp.json()["status_code"] == 3000 and "data" not in resp.json()
    log.append = real_append  # type: ignore[method-assign]
    assert not any(isinstance(e, TokenAuthorizationDecided) for e in log.events)


# --- decided on the log, not on the view ---------------------------------------------


def test_writes_are_decided_while_the_view_lags_and_a_read_waits_for_it(
    client: TestClient, log: InMemoryEventLog, view: LogView
) -> None:
    view.applied = 0  # the projections are down
    url = f"{RECEIVER}/NL/ABD/04A1B2C3"
    _ok(client.put(url, json=token()), 201)
    # A PATCH right after the PUT finds the token (it is not judged on the view).
    _ok(client.patch(url, json={"valid": False, "last_updated": "2026-03-02T00:00:00Z"}))
    _ok(client.put(url, json=token(at="2026-03-03T00:00:00Z")), 200)
    assert [type(e) for e in log.events] == [TokenPut, TokenPatched, TokenPut]
    # A read would answer from a view without the writes: "retry" instead.
    assert client.get(url).json()["status_code"] == 3000
    view.applied = None
    assert _ok(client.get(url))["data"] == token(at="2026-03-03T00:00:00Z")


def test_authorizations_decide_on_the_token_as_the_log_has_it(
    client: TestClient, log: InMemoryEventLog, view: LogView
) -> None:
    _ok(client.put(f"{RECEIVER}/NL/ABD/04A1B2C3", json=token(whitelist="ALWAYS")), 201)
    _issue(client, "OURS1")
    view.applied = len(log.events)  # the view stops here
    blocked = {"valid": False, "last_updated": "2026-03-05T00:00:00Z"}
    _ok(client.patch(f"{RECEIVER}/NL/ABD/04A1B2C3", json=blocked))
    _ok(client.patch("/ops/tokens/OURS1", json=blocked))
    # Our charger: the partner's token is still listed by the view, but
    # decided on its blocked state.
    presented = _ok(client.post("/ops/authorize", json={"uid": "04A1B2C3", "location_id": "L"}))
    assert (presented["data"]["source"], presented["data"]["allowed"]) == ("whitelist", "BLOCKED")
    # Our own token, asked by a partner CPO and at our charger.
    asked = _ok(client.post(f"{SENDER}/OURS1/authorize"))
    assert asked["data"]["allowed"] == "BLOCKED"
    own = _ok(client.post("/ops/authorize", json={"uid": "OURS1", "location_id": "L"}))
    assert (own["data"]["source"], own["data"]["allowed"]) == ("own_token", "BLOCKED")
