"""Who may use the ops API (api/ops/access.py, docs/adr/0031), on the
in-memory write path: the role table, and a test that cannot forget a route
— every route of the app is enumerated, every /ops route refuses a caller
without valid credentials (401) and one whose role is too weak (403), and
no other route is touched. No services."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.ops.access import ROUTE_ROLES, ops_access, required_role
from ocpi_hub.settings import Settings
from producers import operators
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.operators import ApiKeyState, hash_api_key, new_api_key, satisfies
from producers.write_path import WritePath, current_actor
from schemas.events import Actor, LocationObjectPut
from schemas.events.operators import OperatorRole
from tests.ocpi_objects import location

ROLES = list(OperatorRole)
AT = datetime(2026, 12, 1, tzinfo=UTC)


# --- the role table -----------------------------------------------------------------


def test_admin_may_do_everything_and_viewer_only_read() -> None:
    for need in ROLES:
        assert satisfies(OperatorRole.ADMIN, need)
        assert satisfies(need, OperatorRole.VIEWER)
    assert not satisfies(OperatorRole.VIEWER, OperatorRole.OPERATOR)


def test_operator_and_billing_are_not_comparable() -> None:
    assert not satisfies(OperatorRole.OPERATOR, OperatorRole.BILLING)
    assert not satisfies(OperatorRole.BILLING, OperatorRole.OPERATOR)
    for role in (OperatorRole.OPERATOR, OperatorRole.BILLING, OperatorRole.VIEWER):
        assert not satisfies(role, OperatorRole.ADMIN)


def test_reads_need_viewer_and_money_needs_billing() -> None:
    for (method, path), role in ROUTE_ROLES.items():
        # Corporations: contracts and members' personal data, billing's alone
        # (docs/adr/0035), reads included; invoices likewise (docs/adr/0036),
        # and credit notes (docs/adr/0041); what a payment terminal captured,
        # with its EFT data (docs/adr/0047).
        billing_only = (
            "/ops/corporations",
            "/ops/invoices",
            "/ops/billing",
            "/ops/credit-notes",
            "/ops/payments/financial-advice-confirmations",
        )
        if path == "/ops/audit" or path.startswith(("/ops/cdrs", "/admin", *billing_only)):
            continue
        assert (role is OperatorRole.VIEWER) == (method == "GET"), (method, path)
    assert required_role("POST", "/ops/cdrs/{cdr_id}/credit") is OperatorRole.BILLING
    assert required_role("GET", "/ops/cdrs/{cdr_id}") is OperatorRole.BILLING
    assert required_role("PUT", "/ops/tariffs/{tariff_id}") is OperatorRole.BILLING
    assert required_role("PUT", "/ops/locations/{location_id}") is OperatorRole.OPERATOR
    assert required_role("GET", "/ops/audit") is OperatorRole.ADMIN
    for method, path in ROUTE_ROLES:
        if path.startswith(billing_only):
            assert required_role(method, path) is OperatorRole.BILLING, (method, path)


def test_a_route_missing_from_the_table_needs_admin() -> None:
    assert required_role("POST", "/ops/something-new") is OperatorRole.ADMIN


# --- every route of the app -----------------------------------------------------------


def _routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            out += [(method, route) for method in sorted(route.methods)]
    return out


def _dependencies(route: APIRoute) -> set[Any]:
    found: set[Any] = set()
    todo = list(route.dependant.dependencies)
    while todo:
        d = todo.pop()
        found.add(d.call)
        todo += d.dependencies
    return found


# A value each path parameter accepts, so that only the access check can refuse.
_PARAMS = {"kind": "started", "command": "START_SESSION"}


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _PARAMS.get(m.group(1), "X1"), path)


def _key(role: OperatorRole, *, revoked: bool = False) -> tuple[ApiKeyState, str]:
    key_id, key = new_api_key()
    state = ApiKeyState(
        key_id=key_id, name=f"{role.value} key", role=role, key_hash=hash_api_key(key),
        created_at=AT, revoked=revoked,
    )  # fmt: skip
    return state, key


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def keys(log: InMemoryEventLog) -> dict[str, Any]:
    store = InMemoryDecisionStore()
    made: dict[str, Any] = {"store": store}
    for role in ROLES:
        state, key = _key(role)
        store.seed(operators.API_KEYS_SLICE, state.key_id, state)
        made[role.value] = (state, key)
    revoked, key = _key(OperatorRole.ADMIN, revoked=True)
    store.seed(operators.API_KEYS_SLICE, revoked.key_id, revoked)
    made["revoked"] = (revoked, key)
    return made


@pytest.fixture
def app(log: InMemoryEventLog, keys: dict[str, Any]) -> FastAPI:
    write_path = WritePath(log, keys["store"], InMemoryLogHistory(log))
    return create_app(
        Settings(party_country_code="ZZ", party_id="HUB"), event_log=log, write_path=write_path
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _refused(resp: httpx.Response, http: int) -> None:
    assert resp.status_code == http, (resp.request.url, resp.text)
    body = resp.json()
    # The ops API's error shape: an OCPI envelope, 2000, no data.
    assert body["status_code"] == 2000 and "data" not in body, body
    if http == 401:
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert body["status_message"] == "missing or invalid credentials"


def test_the_table_names_exactly_the_ops_routes(app: FastAPI) -> None:
    ops = {(m, r.path) for m, r in _routes(app) if r.path.startswith("/ops")}
    # The /admin pages are in the table too (tests/unit/test_admin_sessions.py).
    assert ops == {k for k in ROUTE_ROLES if k[1].startswith("/ops")}
    assert len(ops) >= 30  # the enumeration found the included routers


def test_every_ops_route_refuses_a_caller_without_valid_credentials(
    app: FastAPI, client: TestClient, log: InMemoryEventLog, keys: dict[str, Any]
) -> None:
    _, revoked = keys["revoked"]
    _, admin = keys["admin"]
    wrong = [
        {},
        {"Authorization": "Bearer"},
        _bearer("ohk_nothing_we_issued"),
        _bearer(revoked),
        _bearer(admin[:-1]),
        # A valid key under another scheme, and OCPI's scheme: /ops is not OCPI.
        {"Authorization": f"Token {admin}"},
        {"Authorization": f"Basic {admin}"},
    ]
    checked = 0
    for method, route in _routes(app):
        if not route.path.startswith("/ops"):
            continue
        for headers in wrong:
            _refused(client.request(method, _url(route.path), headers=headers, json={}), 401)
        checked += 1
    assert checked == len([k for k in ROUTE_ROLES if k[1].startswith("/ops")])
    assert log.events == []  # nothing was recorded


def test_every_ops_route_refuses_a_role_too_weak(
    app: FastAPI, client: TestClient, log: InMemoryEventLog, keys: dict[str, Any]
) -> None:
    refused = 0
    for method, route in _routes(app):
        if not route.path.startswith("/ops"):
            continue
        need = required_role(method, route.path)
        weaker = [r for r in ROLES if not satisfies(r, need)]
        # Only viewer routes have no weaker role: every role reads them.
        assert weaker or need is OperatorRole.VIEWER, (method, route.path)
        for role in weaker:
            _, key = keys[role.value]
            _refused(client.request(method, _url(route.path), headers=_bearer(key), json={}), 403)
            refused += 1
    assert refused >= 30
    assert log.events == []


def test_no_other_route_asks_for_ops_credentials(app: FastAPI, client: TestClient) -> None:
    others = [(m, r) for m, r in _routes(app) if not r.path.startswith("/ops")]
    assert len(others) > 20
    for _, route in others:
        assert ops_access not in _dependencies(route), route.path
    # Public routes answer without any credentials; OCPI keeps its own Token scheme.
    assert client.get("/healthz").status_code == 200
    versions = client.get("/ocpi/versions")
    assert versions.status_code == 401 and versions.headers["WWW-Authenticate"] == "Token"
    assert client.get("/public/evses/NL*ABC*E1").status_code != 401


def test_a_strong_enough_key_passes_and_its_writes_name_it(
    client: TestClient, log: InMemoryEventLog, keys: dict[str, Any]
) -> None:
    state, key = keys["operator"]
    body = location("LOC9", country_code="ZZ", party_id="HUB")
    resp = client.put("/ops/locations/LOC9", json=body, headers=_bearer(key))
    assert resp.status_code == 201, resp.text
    [event] = log.events
    assert isinstance(event, LocationObjectPut)
    assert event.actor == Actor(kind="api_key", id=state.key_id)
    # A viewer reads what the operator wrote (the access check passes;
    # there is no view behind this in-memory app, so only not 401/403).
    _, viewer = keys["viewer"]
    assert client.get("/ops/locations/LOC9", headers=_bearer(viewer)).status_code not in (401, 403)


async def test_the_actor_ends_with_its_request(app: FastAPI, keys: dict[str, Any]) -> None:
    """In-process clients run the app in the caller's context: the actor a
    request set must not carry over to what the caller does next."""
    _, key = keys["admin"]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            body = location("LOC8", country_code="ZZ", party_id="HUB")
            resp = await http.put("/ops/locations/LOC8", json=body, headers=_bearer(key))
            assert resp.status_code == 201, resp.text
            assert current_actor() is None
