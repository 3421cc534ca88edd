"""The HTTP shell of the Commands Receiver (we as CPO) on the in-memory write
path (our location and charge points held in its decision store) and fakes
of the other fact ports: envelopes, status codes, what is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller, caller, registered_caller
from api.ocpi.received_commands import CommandPorts, command_ports
from ocpi_hub.settings import Settings
from processors.command_callbacks import COMMAND_CALLBACKS
from processors.command_results import decide as decide_result
from processors.command_results import evolve as evolve_pending
from processors.result_callbacks import ResultCallbackSender
from producers import charge_points, locations, tokens
from producers.charge_points import ChargePointState
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.received_commands import InMemoryCommandFacts, given_by_operator
from producers.tokens import TokenState
from producers.write_path import WritePath
from schemas.events import CommandAccepted, CommandDeclined
from schemas.events.tokens import token_key
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from tests.ops_admin import ACTOR, as_admin
from tests.token_objects import token as token_object
from tests.unit.received_command_facts import URL, charge_point, our_location, session, start_body
from tests.unit.test_command_results import T0, accepted, answered

RECEIVER = "/ocpi/cpo/2.2.1/commands"


def _partner(role: Role = Role.EMSP) -> PartnerState:
    return PartnerState(
        partner_id="abc",
        status="registered",
        roles=(
            CredentialsRole(
                role=role,
                business_details=BusinessDetails(name="ABC Mobility"),
                country_code="NL",
                party_id="ABD",
            ),
        ),
    )


class Sessions:
    def __init__(self) -> None:
        self.held: dict[str, dict[str, Any]] = {}

    async def read(self, key: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
        return self.held.get(key), {}


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def fakes() -> InMemoryCommandFacts:
    return InMemoryCommandFacts(
        charge_points=[charge_point().model_dump(mode="json")], connected={"CP1"}
    )


@pytest.fixture
def sessions() -> Sessions:
    return Sessions()


def registration(cp_id: str = "CP1", **fields: Any) -> ChargePointState:
    """The charge point registry's state of ``charge_point`` (the view's
    document and the slice's state have one shape)."""
    doc = charge_point(cp_id, **fields).model_dump(mode="json")
    connectors = [
        {**c, "evse_key": c["evse_uid"].upper(), "connector_key": c["connector_id"].upper()}
        for c in doc["connectors"]
    ]
    return ChargePointState.model_validate(
        {
            **doc,
            "location_key": f"ZZ/HUB/{doc['location_id'].upper()}",
            "connectors": connectors,
            "password_hash": "pbkdf2_sha256$1$x$y",
            "registered_at": "2026-06-01T08:00:00Z",
            "updated_at": "2026-06-01T08:00:00Z",
        }
    )


@pytest.fixture
def store() -> InMemoryDecisionStore:
    """Our location LOC1 and charge point CP1, as the write path holds them."""
    held = InMemoryDecisionStore()
    held.seed(locations.SLICE, "ZZ/HUB/LOC1", locations.LocationState(asserted=our_location()))
    held.seed(charge_points.SLICE, "CP1", registration())
    return held


@pytest.fixture
def client(
    request: pytest.FixtureRequest,
    log: InMemoryEventLog,
    store: InMemoryDecisionStore,
    fakes: InMemoryCommandFacts,
    sessions: Sessions,
) -> Iterator[TestClient]:
    app = create_app(
        # The response_urls here name hosts that do not resolve offline; the
        # policy itself is tested with it on in
        # test_a_private_response_url_is_2001_and_writes_nothing.
        Settings(
            party_country_code="ZZ",
            party_id="HUB",
            command_timeout_s=45,
            url_policy_allow_private=request.param if hasattr(request, "param") else True,
        ),
        event_log=log,
        write_path=WritePath(log, store, InMemoryLogHistory(log)),
    )
    app.dependency_overrides[registered_caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[command_ports] = lambda: CommandPorts(
        sessions=sessions,  # type: ignore[arg-type]
        charge_points=fakes,
        received=fakes,
        presence=fakes,
        reservation_ids=fakes,
    )
    with TestClient(app) as c:
        yield c


def _answer(resp: Any, http: int = 200, status: int = 1000) -> dict[str, Any]:
    assert (resp.status_code, resp.json()["status_code"]) == (http, status), resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_start_session_is_accepted_with_our_timeout_once_recorded(
    client: TestClient, log: InMemoryEventLog
) -> None:
    body = _answer(client.post(f"{RECEIVER}/START_SESSION", json=start_body()))
    assert body["data"] == {"result": "ACCEPTED", "timeout": 45}
    [event] = log.events
    assert isinstance(event, CommandAccepted)
    assert event.payload.timeout_s == 45 and event.payload.partner_id == "abc"
    assert event.payload.target.charge_point_id == "CP1"
    assert len(event.payload.command_id) == 32


def test_an_offline_charge_point_is_rejected_and_recorded(
    client: TestClient, log: InMemoryEventLog, fakes: InMemoryCommandFacts
) -> None:
    fakes.connected.clear()
    body = _answer(client.post(f"{RECEIVER}/START_SESSION", json=start_body()))
    assert body["data"]["result"] == "REJECTED"
    assert body["data"]["message"] == [{"language": "en", "text": "charge point offline"}]
    [event] = log.events
    assert isinstance(event, CommandDeclined)


def test_an_unknown_location_is_2003_and_writes_nothing(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # A command reached the OCPI layer: 2003 at HTTP 200 (docs/adr/0039 §2).
    resp = client.post(f"{RECEIVER}/START_SESSION", json=start_body(location_id="NOPE"))
    body = _answer(resp, 200, 2003)
    assert "data" not in body
    assert log.events == []


@pytest.mark.parametrize("client", [False], indirect=True)
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/ocpi/cb", "http://169.254.169.254/x", "http://[::1]/cb"]
)
def test_a_private_response_url_is_2001_and_writes_nothing(
    client: TestClient, log: InMemoryEventLog, url: str
) -> None:
    # We would call it with the result later: refused now (docs/adr/0039).
    body = _answer(
        client.post(f"{RECEIVER}/START_SESSION", json=start_body(response_url=url)), 200, 2001
    )
    assert "response_url" in body["status_message"]
    assert log.events == []


@pytest.mark.parametrize(
    "body",
    [
        start_body(response_url="ftp://emsp.example.com/cb"),
        start_body(evse_uid="E" * 37),
        {"response_url": URL},
        [],
    ],
)
def test_bad_bodies_are_2001_and_write_nothing(
    client: TestClient, log: InMemoryEventLog, body: Any
) -> None:
    _answer(client.post(f"{RECEIVER}/START_SESSION", json=body), 200, 2001)
    assert log.events == []


def test_no_body_is_2001_and_malformed_json_is_400(
    client: TestClient, log: InMemoryEventLog
) -> None:
    _answer(client.post(f"{RECEIVER}/START_SESSION"), 200, 2001)
    _answer(client.post(f"{RECEIVER}/START_SESSION", content=b"{not json"), 400, 2000)
    assert log.events == []


def test_an_unknown_command_is_an_ocpi_error(client: TestClient, log: InMemoryEventLog) -> None:
    # A bad path parameter of a POST: 2001 at HTTP 200 (docs/adr/0039 §2).
    body = _answer(client.post(f"{RECEIVER}/SELF_DESTRUCT", json=start_body()), 200, 2001)
    assert "SELF_DESTRUCT" in body["status_message"]
    assert log.events == []


def test_only_an_emsp_sends_commands(client: TestClient, log: InMemoryEventLog) -> None:
    client.app.dependency_overrides[registered_caller] = lambda: Caller(  # type: ignore[attr-defined]
        _partner(Role.CPO), "token-c", False
    )
    # Refused by the OCPI layer, not the transport: HTTP 200 (docs/adr/0039 §2).
    _answer(client.post(f"{RECEIVER}/START_SESSION", json=start_body()), 200, 2000)
    assert log.events == []


def test_stop_of_an_unknown_session_answers_unknown_session(
    client: TestClient, log: InMemoryEventLog, sessions: Sessions
) -> None:
    stop = {"response_url": URL, "session_id": "S1"}
    body = _answer(client.post(f"{RECEIVER}/STOP_SESSION", json=stop))
    assert body["data"]["result"] == "UNKNOWN_SESSION"
    assert isinstance(log.events[-1], CommandDeclined)
    sessions.held["ZZ/HUB/S1"] = session()
    body = _answer(client.post(f"{RECEIVER}/STOP_SESSION", json=stop))
    assert body["data"]["result"] == "ACCEPTED"
    accepted = log.events[-1]
    assert isinstance(accepted, CommandAccepted) and accepted.payload.target.session_id == "S1"


def _reserve_body(**fields: Any) -> dict[str, Any]:
    return {**start_body(), "expiry_date": "2026-06-01T13:00:00Z", "reservation_id": "R1", **fields}


def test_reserve_now_gets_a_stable_reservation_id_and_an_immediate_cancel_finds_it(
    client: TestClient, log: InMemoryEventLog, fakes: InMemoryCommandFacts
) -> None:
    for evse_uid in ("EVSE1", "EVSE2"):  # the second replaces the first
        _answer(client.post(f"{RECEIVER}/RESERVE_NOW", json=_reserve_body(evse_uid=evse_uid)))
    reservations = [e for e in log.events if isinstance(e, CommandAccepted)]
    assert [e.payload.target.ocpp_reservation_id for e in reservations] == [1, 1]
    # Nothing is in the view (the fake holds no reservation): the cancel
    # finds the latest reservation through the write path.
    assert fakes.reservations == {}
    cancel = {"response_url": URL, "reservation_id": "r1"}
    body = _answer(client.post(f"{RECEIVER}/CANCEL_RESERVATION", json=cancel))
    assert body["data"]["result"] == "ACCEPTED"
    cancelled = log.events[-1]
    assert isinstance(cancelled, CommandAccepted)
    assert cancelled.payload.target == reservations[-1].payload.target
    assert cancelled.payload.target.evse_uid == "EVSE2"


def test_a_declined_reserve_now_does_not_replace_the_reservation(
    client: TestClient, log: InMemoryEventLog, fakes: InMemoryCommandFacts
) -> None:
    _answer(client.post(f"{RECEIVER}/RESERVE_NOW", json=_reserve_body()))
    fakes.connected.clear()
    body = _answer(client.post(f"{RECEIVER}/RESERVE_NOW", json=_reserve_body(evse_uid="EVSE2")))
    assert body["data"]["result"] == "REJECTED"
    fakes.connected.add("CP1")
    cancel = {"response_url": URL, "reservation_id": "R1"}
    assert _answer(client.post(f"{RECEIVER}/CANCEL_RESERVATION", json=cancel))["data"] == {
        "result": "ACCEPTED",
        "timeout": 45,
    }
    cancelled = log.events[-1]
    assert isinstance(cancelled, CommandAccepted) and cancelled.payload.target.evse_uid == "EVSE1"


def test_a_cancel_of_a_reservation_the_index_lost_reads_the_view(
    client: TestClient, log: InMemoryEventLog, fakes: InMemoryCommandFacts
) -> None:
    cancel = {"response_url": URL, "reservation_id": "R7"}
    body = _answer(client.post(f"{RECEIVER}/CANCEL_RESERVATION", json=cancel))
    assert body["data"]["result"] == "REJECTED"  # nobody holds it
    assert "unknown reservation" in body["data"]["message"][0]["text"]
    _answer(client.post(f"{RECEIVER}/RESERVE_NOW", json=_reserve_body(reservation_id="R7")))
    reserved = log.events[-1]
    assert isinstance(reserved, CommandAccepted)
    fakes.holders.clear()  # Redis lost the index; the view has the reservation
    fakes.reservations["NL/ABD/R7"] = reserved.payload.target
    body = _answer(client.post(f"{RECEIVER}/CANCEL_RESERVATION", json=cancel))
    assert body["data"]["result"] == "ACCEPTED"


def test_our_location_and_charge_points_are_judged_as_the_write_path_holds_them(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    # The registry view still lists CP1 at LOC1; its registration says it
    # was deregistered: the command has no charge point to go to.
    store.seed(charge_points.SLICE, "CP1", registration(registered=False), offset=1)
    body = _answer(client.post(f"{RECEIVER}/START_SESSION", json=start_body()))
    assert body["data"]["result"] == "NOT_SUPPORTED"
    # A location the write path does not hold is not ours, whatever a view says.
    store.states.pop(("locations", "ZZ/HUB/LOC1"))
    _answer(client.post(f"{RECEIVER}/START_SESSION", json=start_body()), 200, 2003)
    assert len(log.events) == 1


def test_an_unacknowledged_command_is_3000(client: TestClient, log: InMemoryEventLog) -> None:
    async def fail(events: Any, *, partition: int | None = None) -> Any:
        raise TimeoutError

    log.append = fail  # type: ignore[method-assign]
    body = _answer(client.post(f"{RECEIVER}/START_SESSION", json=start_body()), 200, 3000)
    assert "data" not in body


def test_versions_publish_the_commands_receiver_and_sender(client: TestClient) -> None:
    client.app.dependency_overrides[caller] = lambda: Caller(_partner(), "token-c", False)  # type: ignore[attr-defined]
    endpoints = _answer(client.get("/ocpi/2.2.1"))["data"]["endpoints"]
    commands = {
        (e["role"], e["url"].split("/ocpi/")[1]) for e in endpoints if e["identifier"] == "commands"
    }
    # Both roles: the receiver of commands (as CPO) and the sender interface
    # our response_urls live under (as eMSP).
    assert commands == {("RECEIVER", "cpo/2.2.1/commands"), ("SENDER", "emsp/2.2.1/commands")}


# --- our operator's own commands: POST /ops/commands/given/{command} -----------------

GIVEN = "/ops/commands/given"


@pytest.fixture
def ops_client(client: TestClient, store: InMemoryDecisionStore) -> TestClient:
    as_admin(client.app)  # type: ignore[arg-type]
    ours = token_object("OURS1", country_code="ZZ", party_id="HUB")
    store.seed(tokens.SLICE, token_key("ZZ", "HUB", "OURS1", "RFID"), TokenState(token=ours))
    return client


def test_an_operator_unlock_is_recorded_as_a_command_without_a_partner(
    ops_client: TestClient, log: InMemoryEventLog
) -> None:
    unlock = {"location_id": "LOC1", "evse_uid": "EVSE1", "connector_id": "1"}
    data = _answer(ops_client.post(f"{GIVEN}/UNLOCK_CONNECTOR", json=unlock))["data"]
    assert data["response"] == {"result": "ACCEPTED", "timeout": 45}
    [event] = log.events
    assert isinstance(event, CommandAccepted)
    p = event.payload
    assert p.command_id == data["command_id"]
    assert p.partner_id == f"ops:{ACTOR}" and given_by_operator(p.partner_id)
    assert (p.sender.country_code, p.sender.party_id) == ("ZZ", "HUB")
    # Where its result is read; nothing is ever POSTed there.
    assert p.response_url.endswith(f"/ops/commands/received/{p.command_id}")
    assert p.target.charge_point_id == "CP1" and p.target.ocpp_connector_id == 1
    assert event.actor == ACTOR


def test_an_operator_start_names_one_of_our_tokens_by_uid(
    ops_client: TestClient, log: InMemoryEventLog
) -> None:
    start = {"location_id": "LOC1", "evse_uid": "EVSE1", "token_uid": "ours1"}
    data = _answer(ops_client.post(f"{GIVEN}/START_SESSION", json=start))["data"]
    assert data["response"]["result"] == "ACCEPTED"
    [event] = log.events
    assert isinstance(event, CommandAccepted)
    assert event.payload.request["token"]["uid"] == "OURS1"


@pytest.mark.parametrize(
    ("command", "body", "http"),
    [
        ("START_SESSION", {"location_id": "LOC1", "token_uid": "NOPE"}, 404),  # not ours
        ("START_SESSION", {"location_id": "LOC1", "token_uid": ""}, 200),
        ("UNLOCK_CONNECTOR", {"location_id": "LOC1"}, 200),  # no EVSE, no connector
        ("UNLOCK_CONNECTOR", ["LOC1"], 200),
    ],
)
def test_a_bad_operator_command_is_2001_and_writes_nothing(
    ops_client: TestClient, log: InMemoryEventLog, command: str, body: Any, http: int
) -> None:
    _answer(ops_client.post(f"{GIVEN}/{command}", json=body), http, 2001)
    assert log.events == []


def test_the_ops_api_keeps_its_404s_for_what_a_partner_gets_at_200(
    ops_client: TestClient, log: InMemoryEventLog
) -> None:
    # docs/adr/0039 §2 is for /ocpi; the same refusals on /ops stay REST-like.
    unlock = {"location_id": "NOPE", "evse_uid": "EVSE1", "connector_id": "1"}
    _answer(ops_client.post(f"{GIVEN}/UNLOCK_CONNECTOR", json=unlock), 404, 2003)
    _answer(ops_client.post(f"{GIVEN}/SELF_DESTRUCT", json=unlock), 404, 2001)
    _answer(ops_client.post(f"{RECEIVER}/SELF_DESTRUCT", json=start_body()), 200, 2001)
    assert log.events == []


def test_an_operator_command_to_an_offline_charger_is_declined_in_words(
    ops_client: TestClient, log: InMemoryEventLog, fakes: InMemoryCommandFacts
) -> None:
    fakes.connected.clear()
    unlock = {"location_id": "LOC1", "evse_uid": "EVSE1", "connector_id": "1"}
    data = _answer(ops_client.post(f"{GIVEN}/UNLOCK_CONNECTOR", json=unlock))["data"]
    assert data["response"]["result"] == "REJECTED"
    assert data["response"]["message"][0]["text"] == "charge point offline"
    [event] = log.events
    assert isinstance(event, CommandDeclined) and event.payload.partner_id.startswith("ops:")


class _NoPartners:
    async def get(self, partner_id: str) -> PartnerState | None:
        raise AssertionError(f"looked up partner {partner_id}")


class _NoMarks:
    async def delivered(self, command_id: str) -> bool:
        raise AssertionError("read a delivered marker")

    async def mark(self, command_id: str, outcome: str) -> None:
        raise AssertionError("set a delivered marker")


async def test_no_callback_is_sent_for_an_operator_command() -> None:
    mine = accepted("C9")
    mine = mine.model_copy(
        update={"payload": mine.payload.model_copy(update={"partner_id": "ops:account:ada"})}
    )
    decided = decide_result(evolve_pending(None, mine), answered("C9"), T0)
    assert decided is not None and decided.payload.partner_id == "ops:account:ada"
    sender = ResultCallbackSender(Settings(), _NoPartners(), None, _NoMarks(), COMMAND_CALLBACKS)  # type: ignore[arg-type]
    assert await sender.deliver(decided) == "operator"


# --- OCPI 2.3.0 (docs/ocpi-versions.md "2.3.0", Commands) ---------------------------

RECEIVER_230 = "/ocpi/cpo/2.3.0/commands"


@pytest.fixture
def on_230(client: TestClient) -> TestClient:
    """The eMSP registered for 2.3.0: the route's version is 2.3.0, as
    ``registered_caller`` sets it (api/auth.route_version)."""

    def caller_230(request: Request) -> Caller:
        request.state.ocpi_version = "2.3.0"
        return Caller(_partner(), "token-c", False, "2.3.0")

    client.app.dependency_overrides[registered_caller] = caller_230  # type: ignore[attr-defined]
    return client


def test_a_230_start_session_with_an_emaid_token_is_accepted_and_recorded(
    on_230: TestClient, log: InMemoryEventLog
) -> None:
    body = start_body(token=token_object(type="EMAID"), x_app_version="4.2")
    answer = _answer(on_230.post(f"{RECEIVER_230}/START_SESSION", json=body))
    assert answer["data"] == {"result": "ACCEPTED", "timeout": 45}
    [event] = log.events
    assert isinstance(event, CommandAccepted)
    request = event.payload.request
    # Our model holds OTHER and keeps the 2.3.0 type; the unknown field is kept.
    assert request["token"]["type"] == "OTHER"
    assert request["token"]["ocpi_v230"] == {"type": "EMAID"}
    assert request["x_app_version"] == "4.2"


def test_a_230_command_we_do_not_run_is_not_supported_and_writes_nothing(
    on_230: TestClient, log: InMemoryEventLog
) -> None:
    # CommandType is an OpenEnum in 2.3.0: a custom command is a valid request.
    answer = _answer(on_230.post(f"{RECEIVER_230}/X_UPDATE_FIRMWARE", json={"any": "thing"}))
    assert answer["data"]["result"] == "NOT_SUPPORTED"
    assert answer["data"]["timeout"] == 0
    assert "X_UPDATE_FIRMWARE" in answer["data"]["message"][0]["text"]
    assert log.events == []


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in start_body().items() if k != "token"},
        start_body(token={k: v for k, v in token_object().items() if k != "contract_id"}),
        start_body(location_id="L" * 37),
    ],
)
def test_a_bad_230_command_is_2001_and_writes_nothing(
    on_230: TestClient, log: InMemoryEventLog, body: Any
) -> None:
    _answer(on_230.post(f"{RECEIVER_230}/START_SESSION", json=body), 200, 2001)
    assert log.events == []
