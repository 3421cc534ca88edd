"""Sent commands (we as eMSP) without services: the pure core (command ids, request
building, the fold, the decisions, the read-time status) and the HTTP
shells (ops send and read, our response_url) on the in-memory write path,
with a view folded from its log and a fake channel standing in for the
CPO."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.auth import Caller
from api.auth import caller as any_caller
from api.auth import registered_caller as caller_of
from ocpi_hub.bootstrap import build_container
from ocpi_hub.secrets import TokenVault
from ocpi_hub.settings import Settings
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.sent_commands import (
    NO_RESULT_IN_TIME,
    PENDING,
    SLICE,
    CommandIds,
    CpoAnswer,
    SendFailedError,
    SentCommandState,
    build_request,
    command_target,
    decide_result,
    decide_sent,
    evolve,
    outbound_headers,
    plan_result,
    plan_sent,
    read_response,
    response_url,
    status_of,
)
from producers.write_path import RefusedError, WritePath, partition_for
from projections.mongo.folding import Doc
from projections.mongo.sent_commands import SentPage, apply
from projections.position import Record
from schemas.events import CommandAccepted, CommandResultReceived, CommandSent, Party
from schemas.ocpi.commands import (
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    CommandType,
)
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint
from tests.ops_admin import as_admin
from tests.token_objects import token

US = Party(country_code="ZZ", party_id="HUB")
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
IDS = CommandIds(b"unit-test-secret")
START = CommandType.START_SESSION


def start_body(**fields: Any) -> dict[str, Any]:
    return {"token": token("OURS1", country_code="ZZ", party_id="HUB"), "location_id": "LOC1",
            **fields}  # fmt: skip


# --- command ids --------------------------------------------------------------


def test_a_command_id_is_genuine_only_for_its_partner_and_command() -> None:
    cid = IDS.new("CPO-A", START)
    assert len(cid) <= 64 and cid.replace("-", "").isalnum()
    assert IDS.genuine(cid, "CPO-A", START)
    assert not IDS.genuine(cid, "CPO-B", START)
    assert not IDS.genuine(cid, "CPO-A", CommandType.STOP_SESSION)
    assert not CommandIds(b"another key").genuine(cid, "CPO-A", START)
    tampered = cid[:-1] + ("0" if cid[-1] != "0" else "1")
    assert not IDS.genuine(tampered, "CPO-A", START)
    for junk in ("", "abc", "-", cid.replace("-", ""), cid + "0"):
        assert not IDS.genuine(junk, "CPO-A", START)
    assert IDS.new("CPO-A", START) != cid  # a fresh nonce every time


def test_the_response_url_names_the_command_and_its_id() -> None:
    url = response_url("https://hub.example/", START, "n-m")
    assert url == "https://hub.example/ocpi/emsp/2.2.1/commands/START_SESSION/n-m"


# --- request building ---------------------------------------------------------


def test_the_request_gets_our_response_url() -> None:
    url = "https://hub.example/ocpi/emsp/2.2.1/commands/START_SESSION/x-y"
    request = build_request(START, start_body(evse_uid="E1"), url, US)
    assert request["response_url"] == url
    assert request["location_id"] == "LOC1" and request["evse_uid"] == "E1"
    assert "connector_id" not in request  # absent fields stay absent


@pytest.mark.parametrize("command", [CommandType.START_SESSION, CommandType.RESERVE_NOW])
def test_only_our_own_tokens_are_used(command: CommandType) -> None:
    body = start_body(token=token("THEIRS", country_code="NL", party_id="ABC"))
    if command is CommandType.RESERVE_NOW:
        body |= {"expiry_date": "2026-06-01T11:00:00Z", "reservation_id": "R1"}
    with pytest.raises(RefusedError) as refused:
        build_request(command, body, "https://hub.example/r", US)
    assert refused.value.status == 2001 and "not one of ours" in refused.value.message
    # Our party in another case is ours (CiString).
    mine = {**body, "token": token("MINE", country_code="zz", party_id="hub")}
    assert build_request(command, mine, "https://hub.example/r", US)["token"]["uid"] == "MINE"


def test_a_body_with_its_own_response_url_or_not_an_object_is_refused() -> None:
    with pytest.raises(RefusedError, match="response_url is set by the platform"):
        build_request(START, start_body(response_url="https://elsewhere/"), "https://h/r", US)
    with pytest.raises(RefusedError):
        build_request(START, ["not", "an", "object"], "https://h/r", US)


@pytest.mark.parametrize(
    ("command", "body"),
    [
        (START, {"location_id": "LOC1"}),  # no token
        (CommandType.STOP_SESSION, {}),
        (CommandType.UNLOCK_CONNECTOR, {"location_id": "L", "evse_uid": "E"}),
        (CommandType.CANCEL_RESERVATION, {"reservation_id": "x" * 37}),
    ],
)
def test_bad_bodies_fail_validation(command: CommandType, body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build_request(command, body, "https://hub.example/r", US)


def test_outbound_headers_are_ours_only() -> None:
    headers = outbound_headers(
        us=US, to=Party(country_code="NL", party_id="CPO"), request_id="r1", correlation_id="c1"
    )
    assert headers == {
        "Content-Type": "application/json",
        "X-Request-ID": "r1",
        "X-Correlation-ID": "c1",
        "OCPI-from-country-code": "ZZ",
        "OCPI-from-party-id": "HUB",
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "CPO",
    }


def _partner(
    partner_id: str = "CPO-A",
    *,
    status: str = "registered",
    commands: bool = True,
    party: tuple[str, str] = ("NL", "CPO"),
) -> PartnerState:
    endpoints = (
        Endpoint(identifier="commands", role="RECEIVER", url="https://cpo.example/commands/"),
    )
    return PartnerState.model_validate(
        {
            "partner_id": partner_id,
            "status": status,
            "endpoints": endpoints if commands else (),
            "our_token_encrypted": "sealed",
            "roles": (
                CredentialsRole(
                    role=Role.EMSP,
                    business_details=BusinessDetails(name="x"),
                    country_code="NL",
                    party_id="EEE",
                ),
                CredentialsRole(
                    role=Role.CPO,
                    business_details=BusinessDetails(name="x"),
                    country_code=party[0],
                    party_id=party[1],
                ),
            ),
        }
    )


def test_a_partner_without_commands_receiver_is_refused() -> None:
    target = command_target("CPO-A", _partner())
    assert target.command_url(START) == "https://cpo.example/commands/START_SESSION"
    assert target.to == Party(country_code="NL", party_id="CPO")  # its CPO role
    for partner, http in ((None, 404), (_partner(status="unregistered"), 409),
                          (_partner(commands=False), 409)):  # fmt: skip
        with pytest.raises(RefusedError) as refused:
            command_target("CPO-A", partner)
        assert (refused.value.status, refused.value.http_status) == (2001, http)


def test_the_cpos_answer_must_be_an_ocpi_command_response() -> None:
    ok = CpoAnswer(200, 1000, {"result": "ACCEPTED", "timeout": 30})
    assert read_response(ok) == CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)
    for answer, said in [
        (CpoAnswer(None, None, error="ConnectError"), "could not be reached (ConnectError)"),
        (CpoAnswer(502, None), "HTTP 502, not OCPI"),
        (CpoAnswer(200, 2001, status_message="bad"), "OCPI 2001: bad"),
        (CpoAnswer(200, 1000, {"result": "MAYBE", "timeout": 1}), "not a CommandResponse"),
        (CpoAnswer(200, 1000, None), "not a CommandResponse"),
    ]:
        with pytest.raises(SendFailedError, match=said.replace("(", r"\(").replace(")", r"\)")):
            read_response(answer)


# --- the fold and the status --------------------------------------------------


def _sent(response: str = "ACCEPTED", timeout: int = 30, cid: str = "c1") -> CommandSent:
    return plan_sent(
        command_id=cid,
        command=START,
        target=command_target("CPO-A", _partner()),
        request={"location_id": "LOC1"},
        response=CommandResponse(result=CommandResponseType(response), timeout=timeout),
        us=US,
        now=NOW,
        correlation_id="corr",
    )


def _result(result: str, at: datetime = NOW, cid: str = "c1") -> CommandResultReceived:
    return plan_result(
        command_id=cid,
        partner_id="CPO-A",
        sender=Party(country_code="NL", party_id="CPO"),
        result=CommandResult(result=CommandResultType(result)),
        now=at,
        correlation_id="corr",
    )


def test_status_is_judged_at_read_time() -> None:
    accepted = evolve(None, _sent(timeout=30))
    assert status_of(accepted, NOW + timedelta(seconds=29)) == PENDING
    assert status_of(accepted, NOW + timedelta(seconds=30)) == NO_RESULT_IN_TIME
    late = evolve(accepted, _result("ACCEPTED", NOW + timedelta(seconds=90)))
    assert status_of(late, NOW + timedelta(seconds=91)) == "ACCEPTED"  # a late result counts
    assert status_of(evolve(accepted, _result("TIMEOUT")), NOW) == "TIMEOUT"
    rejected = evolve(None, _sent("REJECTED", timeout=0))
    assert status_of(rejected, NOW + timedelta(days=1)) == "REJECTED"
    unknown = evolve(None, _sent("UNKNOWN_SESSION"))
    assert status_of(unknown, NOW) == "UNKNOWN_SESSION"


def test_the_first_result_stands_and_may_come_before_the_send() -> None:
    early = evolve(None, _result("ACCEPTED"))
    assert early.result is CommandResultType.ACCEPTED and early.sent_at is None
    assert status_of(early, NOW) == "ACCEPTED"
    both = evolve(early, _sent())
    assert (both.response, both.result, both.timeout_s) == (
        CommandResponseType.ACCEPTED,
        CommandResultType.ACCEPTED,
        30,
    )
    assert evolve(both, _result("FAILED")).result is CommandResultType.ACCEPTED
    # Every delivery of a command's result carries the same event id.
    assert _result("ACCEPTED").event_id == _result("FAILED").event_id


def test_a_result_is_recorded_unless_one_is_and_a_send_always() -> None:
    first = decide_result(None, _result("ACCEPTED"))
    assert (list(first.events), first.answer) == ([_result("ACCEPTED")], None)
    held = SLICE.fold(None, first.events)
    assert held is not None
    repeat = decide_result(held, _result("FAILED"))
    assert (list(repeat.events), repeat.answer) == ([], CommandResultType.ACCEPTED)
    # The send is recorded even after its result, and keeps the result.
    event = _sent()
    sent = decide_sent(held, event)
    assert (list(sent.events), sent.answer) == ([event], None)
    both = SLICE.fold(held, sent.events)
    assert both is not None and (both.result, both.sent_at) == (CommandResultType.ACCEPTED, NOW)
    assert SLICE.load(SLICE.dump(both)) == both
    # Received commands share the topic: not this slice's.
    assert SLICE.fold(None, [CommandAccepted.model_construct(aggregate_key="c1")]) is None


# --- the HTTP shells ----------------------------------------------------------


class LogView:
    """The sent_commands view, folded from the fake log on every read (each
    event at the partition the write path appended it to)."""

    def __init__(self, log: InMemoryEventLog) -> None:
        self._log = log

    def _docs(self) -> dict[str, Doc]:
        docs: dict[str, Doc] = {}
        for offset, event in enumerate(self._log.events):
            if isinstance(event, CommandSent | CommandResultReceived):
                partition = partition_for(event.aggregate_key, PARTITIONS)
                record = Record("ocpi.commands.v1", partition, offset, event)
                if (doc := apply(docs.get(event.aggregate_key), record)) is not None:
                    docs[event.aggregate_key] = doc
        return docs

    async def read(self, command_id: str) -> tuple[SentCommandState | None, dict[str, int]]:
        doc = self._docs().get(command_id)
        if doc is None:
            return None, {}
        fields = {k: v for k, v in doc.items() if not k.startswith("_")}
        return SentCommandState.model_validate(fields), dict(doc["_positions"])

    async def positions(self, command_id: str) -> dict[str, int]:
        return (await self.read(command_id))[1]

    async def page(self, *, partner_id: str | None, after: str | None, limit: int) -> SentPage:
        states = [s for k in self._docs() if (s := (await self.read(k))[0]) is not None]
        return SentPage([s for s in states if partner_id in (None, s.partner_id)][:limit], None)


PARTITIONS = 6


@dataclasses.dataclass
class FakeChannel:
    """The CPO: records what it was sent and answers ``answer``."""

    answer: CpoAnswer = dataclasses.field(
        default_factory=lambda: CpoAnswer(200, 1000, {"result": "ACCEPTED", "timeout": 30})
    )
    sent: list[tuple[str, str, dict[str, str], dict[str, Any]]] = dataclasses.field(
        default_factory=list
    )
    # Runs before the CPO answers (a CPO that posts the result first).
    meanwhile: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    async def post(
        self, url: str, *, token: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> CpoAnswer:
        return await self.send("POST", url, token=token, headers=headers, body=body)

    async def send(
        self,
        method: str,
        url: str,
        *,
        token: str,
        headers: Mapping[str, str],
        body: dict[str, Any] | None = None,
        raw_token: bool = False,
    ) -> CpoAnswer:
        assert method == "POST"  # commands are POSTed
        assert body is not None
        self.sent.append((url, token, dict(headers), body))
        if self.meanwhile is not None:
            await self.meanwhile(body)
        return self.answer


class FakePartners:
    def __init__(self, *partners: PartnerState) -> None:
        self._by_id = {p.partner_id: p for p in partners}

    async def get(self, partner_id: str) -> PartnerState | None:
        return self._by_id.get(partner_id)


@dataclasses.dataclass
class World:
    client: TestClient
    log: InMemoryEventLog
    channel: FakeChannel
    caller: list[PartnerState]  # who calls our OCPI interface (the first)


@pytest.fixture
def world() -> Iterator[World]:
    settings = Settings(party_country_code="ZZ", party_id="HUB", public_url="https://hub.example")
    vault = TokenVault(Fernet.generate_key())
    cpo_a = _partner("CPO-A").model_copy(update={"our_token_encrypted": vault.encrypt("tok-A")})
    cpo_b = _partner("CPO-B", party=("DE", "BBB"))
    bare = _partner("BARE", commands=False)
    log = InMemoryEventLog()
    write_path = WritePath(log, InMemoryDecisionStore(), InMemoryLogHistory(log, PARTITIONS))
    channel = FakeChannel()
    container = dataclasses.replace(
        build_container(settings),
        partners=FakePartners(cpo_a, cpo_b, bare),  # type: ignore[arg-type]
        vault=vault,
        command_channel=channel,
        command_ids=IDS,
        sent_commands=LogView(log),  # type: ignore[arg-type]
    )
    app = create_app(settings, container=container, event_log=log, write_path=write_path)
    as_admin(app)
    caller = [cpo_a]
    app.dependency_overrides[caller_of] = lambda: Caller(caller[0], "their-token", False)
    app.dependency_overrides[any_caller] = app.dependency_overrides[caller_of]
    with TestClient(app) as client:
        yield World(client, log, channel, caller)


def _send(w: World, body: Any, partner: str = "CPO-A", command: str = "START_SESSION") -> Any:
    return w.client.post(
        f"/ops/commands/sent/{partner}/{command}",
        json=body,
        headers={
            "Authorization": "Token b3BzLWNhbGxlcg==",
            "X-Correlation-ID": "corr-1",
            "X-Custom": "do-not-forward",
        },
    )


def test_ops_sends_a_command_with_our_response_url_and_our_token(world: World) -> None:
    resp = _send(world, start_body())
    body = resp.json()
    assert (resp.status_code, body["status_code"]) == (200, 1000), body
    data = body["data"]
    cid = data["command_id"]
    assert IDS.genuine(cid, "CPO-A", START)
    assert data["response_url"] == (
        f"https://hub.example/ocpi/emsp/2.2.1/commands/START_SESSION/{cid}"
    )
    assert data["response"] == {"result": "ACCEPTED", "timeout": 30}
    [(url, token_used, headers, sent)] = world.channel.sent
    assert url == "https://cpo.example/commands/START_SESSION"
    assert token_used == "tok-A"  # our token for that partner, not the ops caller's header
    assert sent["response_url"] == data["response_url"]
    assert headers["X-Correlation-ID"] == "corr-1"
    assert "Authorization" not in headers and "X-Custom" not in headers
    assert (headers["OCPI-to-country-code"], headers["OCPI-to-party-id"]) == ("NL", "CPO")
    [event] = world.log.events
    assert isinstance(event, CommandSent) and event.aggregate_key == cid
    assert (event.payload.response, event.payload.timeout_s) == (CommandResponseType.ACCEPTED, 30)
    shown = world.client.get(f"/ops/commands/sent/{cid}").json()["data"]
    assert (shown["status"], shown["partner_id"], shown["command"]) == (
        PENDING,
        "CPO-A",
        "START_SESSION",
    )
    listed = world.client.get("/ops/commands/sent", params={"partner_id": "CPO-A"}).json()
    assert [c["command_id"] for c in listed["data"]] == [cid]


@pytest.mark.parametrize(
    ("partner", "command", "body", "http", "ocpi"),
    [
        ("CPO-A", "START_SESSION", {"location_id": "L"}, 200, 2001),
        ("CPO-A", "START_SESSION", start_body(token=token("X", party_id="ABC")), 200, 2001),
        ("CPO-A", "START_SESSION", start_body(response_url="https://x/"), 200, 2001),
        ("CPO-A", "FLY_AWAY", {"session_id": "S"}, 400, 2001),
        ("NOBODY", "STOP_SESSION", {"session_id": "S"}, 404, 2001),
        ("BARE", "STOP_SESSION", {"session_id": "S"}, 409, 2001),
    ],
)
def test_bad_sends_are_refused_and_nothing_is_sent_or_written(
    world: World, partner: str, command: str, body: Any, http: int, ocpi: int
) -> None:
    resp = _send(world, body, partner, command)
    assert (resp.status_code, resp.json()["status_code"]) == (http, ocpi), resp.text
    assert world.channel.sent == [] and world.log.events == []


@pytest.mark.parametrize(
    "answer",
    [
        CpoAnswer(None, None, error="ConnectTimeout"),
        CpoAnswer(500, None),
        CpoAnswer(200, 2001, status_message="nope"),
        CpoAnswer(200, 1000, {"result": "ACCEPTED"}),
    ],
)
def test_a_cpo_that_cannot_be_used_is_502_and_nothing_is_recorded(
    world: World, answer: CpoAnswer
) -> None:
    world.channel.answer = answer
    resp = _send(world, {"session_id": "S1"}, command="STOP_SESSION")
    assert (resp.status_code, resp.json()["status_code"]) == (502, 3001), resp.text
    assert world.log.events == []


def _callback(w: World, command: str, cid: str, body: Any) -> Any:
    return w.client.post(f"/ocpi/emsp/2.2.1/commands/{command}/{cid}", json=body)


def test_the_result_is_recorded_once_and_the_first_one_stands(world: World) -> None:
    cid = _send(world, start_body()).json()["data"]["command_id"]
    ok = _callback(world, "START_SESSION", cid, {"result": "ACCEPTED"})
    assert (ok.status_code, ok.json()["status_code"]) == (200, 1000), ok.text
    assert (ok.headers["OCPI-to-country-code"], ok.headers["OCPI-to-party-id"]) == ("NL", "EEE")
    again = _callback(world, "START_SESSION", cid, {"result": "FAILED"})
    assert (again.status_code, again.json()["status_code"]) == (200, 1000)
    results = [e for e in world.log.events if isinstance(e, CommandResultReceived)]
    assert [r.payload.result for r in results] == [CommandResultType.ACCEPTED]
    assert world.client.get(f"/ops/commands/sent/{cid}").json()["data"]["status"] == "ACCEPTED"


def test_a_result_may_come_before_the_send_is_recorded(world: World) -> None:
    cid = IDS.new("CPO-A", START)  # as if our record of the send were still on its way
    ok = _callback(world, "START_SESSION", cid, {"result": "TIMEOUT"})
    assert ok.json()["status_code"] == 1000
    [event] = world.log.events
    assert isinstance(event, CommandResultReceived) and event.payload.partner_id == "CPO-A"


def test_a_result_posted_while_the_send_is_in_flight_stays(world: World) -> None:
    app = world.client.app

    async def cpo_posts_its_result(request: dict[str, Any]) -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://hub.example"
        ) as cpo:
            resp = await cpo.post(request["response_url"], json={"result": "REJECTED"})
            assert resp.json()["status_code"] == 1000, resp.text

    world.channel.meanwhile = cpo_posts_its_result
    sent = _send(world, start_body())
    assert sent.json()["status_code"] == 1000, sent.text
    cid = sent.json()["data"]["command_id"]
    assert [type(e) for e in world.log.events] == [CommandResultReceived, CommandSent]
    shown = world.client.get(f"/ops/commands/sent/{cid}").json()["data"]
    assert (shown["status"], shown["response"], shown["result"]) == (
        "REJECTED",
        "ACCEPTED",
        "REJECTED",
    )
    # A repeat of the result after the send records nothing.
    again = _callback(world, "START_SESSION", cid, {"result": "ACCEPTED"})
    assert again.json()["status_code"] == 1000
    assert len(world.log.events) == 2


def test_a_send_the_log_does_not_acknowledge_names_the_command(world: World) -> None:
    async def fail(events: Any, *, partition: int | None = None) -> Any:
        raise TimeoutError

    world.log.append = fail  # type: ignore[method-assign]
    resp = _send(world, start_body())
    body = resp.json()
    assert (resp.status_code, body["status_code"]) == (500, 3000), resp.text
    [(_, _, _, request)] = world.channel.sent  # the CPO has it
    cid = request["response_url"].rsplit("/", 1)[1]
    assert f"command {cid} was sent" in body["status_message"]
    assert "partner answered ACCEPTED" in body["status_message"]


def test_callbacks_for_someone_elses_command_are_unknown(world: World) -> None:
    cid = _send(world, start_body()).json()["data"]["command_id"]
    before = list(world.log.events)
    # Another command type in the path, an id we never made. A POST reached
    # the OCPI layer: 2003 at HTTP 200 (docs/adr/0039 §2).
    for command, some_id in (("STOP_SESSION", cid), ("START_SESSION", "0" * 20 + "-" + "0" * 24)):
        resp = _callback(world, command, some_id, {"result": "ACCEPTED"})
        assert (resp.status_code, resp.json()["status_code"]) == (200, 2003), resp.text
    # Another partner, with its own valid token.
    world.caller[0] = _partner("CPO-B", party=("DE", "BBB"))
    resp = _callback(world, "START_SESSION", cid, {"result": "ACCEPTED"})
    assert (resp.status_code, resp.json()["status_code"]) == (200, 2003), resp.text
    assert world.log.events == before


@pytest.mark.parametrize(
    "body", [{"result": "MAYBE"}, {}, None, {"result": "ACCEPTED", "message": 1}]
)
def test_a_bad_result_body_is_2001_and_writes_nothing(world: World, body: Any) -> None:
    cid = IDS.new("CPO-A", START)
    resp = _callback(world, "START_SESSION", cid, body)
    assert (resp.status_code, resp.json()["status_code"]) == (200, 2001), resp.text
    assert world.log.events == []


def test_without_a_partner_token_the_callback_is_401(world: World) -> None:
    del world.client.app.dependency_overrides[caller_of]  # type: ignore[attr-defined]
    resp = _callback(world, "START_SESSION", IDS.new("CPO-A", START), {"result": "ACCEPTED"})
    assert resp.status_code == 401 and resp.json()["status_code"] == 2000
    assert world.log.events == []


def test_our_version_details_list_the_commands_sender(world: World) -> None:
    resp = world.client.get("/ocpi/2.2.1")
    endpoints = resp.json()["data"]["endpoints"]
    assert {
        "identifier": "commands",
        "role": "SENDER",
        "url": "https://hub.example/ocpi/emsp/2.2.1/commands",
    } in endpoints
