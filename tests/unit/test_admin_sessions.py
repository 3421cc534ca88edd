"""Browser sessions of the admin dashboard (api/admin/sessions.py,
api/admin/pages.py, api/ops/access.py; docs/adr/0033) on the in-memory
write path: sign-in and its refusals, the cookie's flags, CSRF on every
unsafe method, throttling, expiry, sign-out. No services."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.admin.sessions import (
    SESSION_COOKIE,
    BrowserSession,
    InMemorySessionStore,
    SessionPolicy,
    tokens_match,
)
from api.app import create_app
from api.ops.access import OPEN_ADMIN_ROUTES, ROUTE_ROLES, admin_access
from ocpi_hub.settings import Settings
from producers import operators
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.operators import AccountState, hash_password
from producers.write_path import WritePath
from schemas.events import Actor, LocationObjectPut
from schemas.events.operators import OperatorRole
from schemas.ocpi.locations import EvseStatus
from tests.ocpi_objects import location

AT = datetime(2026, 12, 1, tzinfo=UTC)
PASSWORD = "correct horse battery"
# One argon2 hash for every account: hashing costs ~170 ms of CPU.
HASH = hash_password(PASSWORD)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# --- the pure parts ---------------------------------------------------------------------


def test_tokens_match_only_the_same_token() -> None:
    assert tokens_match("abc123", "abc123")
    assert not tokens_match("abc123", "abc124")
    assert not tokens_match("abc123", None)
    assert not tokens_match("abc123", "")
    assert not tokens_match("", "")
    assert not tokens_match("abc123", "abc123" * 50)  # longer than any token of ours


def test_a_session_ends_when_idle_and_at_its_absolute_limit() -> None:
    policy = SessionPolicy(idle_s=60, absolute_s=300)
    s = BrowserSession("ada", "t", created_at=0.0, last_seen=0.0)
    assert policy.alive(s, 59.0) and not policy.alive(s, 60.0)
    busy = BrowserSession("ada", "t", created_at=0.0, last_seen=290.0)
    assert policy.alive(busy, 299.0) and not policy.alive(busy, 300.0)
    # Redis's TTL: the idle time, but never past the absolute end.
    assert policy.ttl_s(s, 0.0) == 60
    assert policy.ttl_s(busy, 280.0) == 20


async def test_activity_restarts_the_idle_time_but_not_the_absolute_one() -> None:
    clock = Clock()
    store = InMemorySessionStore(SessionPolicy(idle_s=60, absolute_s=150), clock)
    session_id, _ = await store.create("ada")
    for _ in range(2):
        clock.now += 50
        assert await store.get(session_id) is not None
    clock.now += 50  # 150 s after sign-in, 50 s after the last request
    assert await store.get(session_id) is None
    quiet_id, _ = await store.create("ada")
    clock.now += 59
    assert await store.peek(quiet_id) is not None
    clock.now += 2  # peek did not count as activity
    assert await store.get(quiet_id) is None


# --- the app ------------------------------------------------------------------------------


def _account(login: str, role: OperatorRole, *, disabled: bool = False) -> AccountState:
    return AccountState(
        login=login, display_name=login.title(), role=role, password_hash=HASH,
        disabled=disabled, created_at=AT, updated_at=AT,
    )  # fmt: skip


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def store() -> InMemoryDecisionStore:
    store = InMemoryDecisionStore()
    for login, role in (("ada", OperatorRole.OPERATOR), ("vic", OperatorRole.VIEWER)):
        store.seed(operators.ACCOUNTS, login, _account(login, role))
    store.seed(operators.ACCOUNTS, "dan", _account("dan", OperatorRole.ADMIN, disabled=True))
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(clock: Clock) -> InMemorySessionStore:
    return InMemorySessionStore(SessionPolicy(idle_s=600, absolute_s=3600), clock)


def _app(
    log: InMemoryEventLog,
    store: InMemoryDecisionStore,
    sessions: InMemorySessionStore,
    **settings: object,
) -> FastAPI:
    return create_app(
        Settings(party_country_code="ZZ", party_id="HUB", **settings),  # type: ignore[arg-type]
        event_log=log,
        write_path=WritePath(log, store, InMemoryLogHistory(log)),
        sessions=sessions,
    )


@pytest.fixture
def app(
    log: InMemoryEventLog, store: InMemoryDecisionStore, sessions: InMemorySessionStore
) -> FastAPI:
    return _app(log, store, sessions)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/admin/login")
    assert form.status_code == 200
    return client.post(
        "/admin/login",
        data={"login": login, "password": password, "csrf_token": _form_token(form)},
    )


def _session(client: TestClient, sessions: InMemorySessionStore) -> BrowserSession:
    [session] = sessions.sessions.values()
    return session


def test_a_page_needs_a_session_and_sends_the_browser_to_sign_in(client: TestClient) -> None:
    resp = client.get("/admin?status=AVAILABLE")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/admin/login?next=%2Fadmin%3Fstatus%3DAVAILABLE"
    stream = client.get("/admin/board/events")
    assert stream.status_code == 401 and "sign in" in stream.text.lower()
    assert "Traceback" not in stream.text


def test_signing_in_sets_a_strict_httponly_cookie(
    client: TestClient, sessions: InMemorySessionStore
) -> None:
    resp = sign_in(client, "ada")
    assert resp.status_code == 303 and resp.headers["location"] == "/admin"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain HTTP, "auto"
    assert _session(client, sessions).login == "ada"


def test_the_cookie_is_secure_over_tls_or_when_set_so(
    log: InMemoryEventLog, store: InMemoryDecisionStore, sessions: InMemorySessionStore
) -> None:
    app = _app(log, store, sessions)  # "auto"
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        resp = sign_in(c, "ada")
        cookie = next(x for x in resp.headers.get_list("set-cookie") if SESSION_COOKIE in x)
        assert "secure" in cookie.lower()
    for base, setting, secure in (
        ("http://testserver", "always", True),
        ("https://testserver", "never", False),
    ):
        app = _app(log, store, sessions, admin_cookie_secure=setting)
        with TestClient(app, base_url=base, follow_redirects=False) as c:
            form_cookie = c.get("/admin/login").headers["set-cookie"].lower()
            assert ("secure" in form_cookie) is secure, (base, setting)


def test_wrong_password_unknown_and_disabled_accounts_get_the_same_answer(
    client: TestClient, sessions: InMemorySessionStore
) -> None:
    answers = [
        sign_in(client, "ada", "not the password"),
        sign_in(client, "nobody"),
        sign_in(client, "dan"),  # disabled
        sign_in(client, "NOT A LOGIN!"),
    ]
    messages = {re.search(r'id="login-message">([^<]+)<', a.text).group(1) for a in answers}  # type: ignore[union-attr]
    assert [a.status_code for a in answers] == [401] * 4
    assert len(messages) == 1 and "do not match" in messages.pop()
    assert sessions.sessions == {}


def test_a_forged_sign_in_is_refused(client: TestClient, sessions: InMemorySessionStore) -> None:
    # No form token of ours (a cross-site form): refused before any check.
    resp = client.post("/admin/login", data={"login": "ada", "password": PASSWORD})
    assert resp.status_code == 403 and "did not come from this site" in resp.text
    client.get("/admin/login")  # a cookie, but another token in the form
    resp = client.post(
        "/admin/login", data={"login": "ada", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert resp.status_code == 403
    assert sessions.sessions == {}


def test_sign_in_is_throttled_per_login_whatever_the_password(client: TestClient) -> None:
    for _ in range(5):
        assert sign_in(client, "vic", "wrong password!").status_code == 401
    resp = sign_in(client, "vic")  # the right password, too late
    assert resp.status_code == 429
    assert "Too many sign-in attempts" in resp.text and int(resp.headers["Retry-After"]) > 0
    # Another login from the same client is not held up by vic's count.
    assert sign_in(client, "ada").status_code == 303


def test_sign_in_is_throttled_per_client(
    log: InMemoryEventLog, store: InMemoryDecisionStore, sessions: InMemorySessionStore
) -> None:
    app = _app(log, store, sessions, admin_login_attempts_per_client=3)
    with TestClient(app, follow_redirects=False) as c:
        for login in ("a1", "a2", "a3"):
            assert sign_in(c, login).status_code == 401
        assert sign_in(c, "ada").status_code == 429


def test_next_only_leads_to_our_pages(client: TestClient) -> None:
    for target, expected in (
        ("/admin?party=NL-ABC", "/admin?party=NL-ABC"),
        ("https://evil.example/", "/admin"),
        ("//evil.example/admin", "/admin"),
    ):
        client.cookies.clear()  # signed out: the form is shown again
        token = _form_token(client.get("/admin/login"))
        resp = client.post(
            "/admin/login",
            data={"login": "ada", "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert resp.headers["location"] == expected


def test_ops_takes_the_session_with_the_csrf_token_on_writes(
    client: TestClient, log: InMemoryEventLog, sessions: InMemorySessionStore
) -> None:
    sign_in(client, "ada")
    token = _session(client, sessions).csrf_token
    body = location("LOC1", country_code="ZZ", party_id="HUB")
    # The cookie alone, as a forged cross-site request would carry it.
    forged = client.put("/ops/locations/LOC1", json=body)
    assert forged.status_code == 403 and "CSRF" in forged.json()["status_message"]
    wrong = client.put("/ops/locations/LOC1", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    assert log.events == []
    made = client.put("/ops/locations/LOC1", json=body, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    [event] = log.events
    assert isinstance(event, LocationObjectPut)
    assert event.actor == Actor(kind="account", id="ada")


def test_a_viewers_write_is_refused(
    client: TestClient, log: InMemoryEventLog, sessions: InMemorySessionStore
) -> None:
    sign_in(client, "vic")
    token = _session(client, sessions).csrf_token
    body = location("LOC2", country_code="ZZ", party_id="HUB")
    resp = client.put("/ops/locations/LOC2", json=body, headers={"X-CSRF-Token": token})
    assert resp.status_code == 403 and "operator" in resp.json()["status_message"]
    assert log.events == []


def test_a_disabled_accounts_session_ends_at_once(
    client: TestClient, store: InMemoryDecisionStore, sessions: InMemorySessionStore
) -> None:
    sign_in(client, "ada")
    assert client.get("/ops/locations/LOC3").status_code not in (401, 403)
    disabled = _account("ada", OperatorRole.OPERATOR, disabled=True)
    store.seed(operators.ACCOUNTS, "ada", disabled, offset=1)  # a later version
    assert client.get("/ops/locations/LOC3").status_code == 401
    assert sessions.sessions == {}


def test_an_expired_session_is_refused(
    client: TestClient, clock: Clock, sessions: InMemorySessionStore
) -> None:
    sign_in(client, "ada")
    clock.now += 601  # idle beyond 600 s
    assert client.get("/ops/locations/LOC4").status_code == 401
    assert client.get("/admin").status_code == 303


def test_logout_needs_the_token_and_ends_the_session(
    client: TestClient, sessions: InMemorySessionStore
) -> None:
    sign_in(client, "ada")
    session_id = client.cookies[SESSION_COOKIE]
    forged = client.post("/admin/logout")
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    assert len(sessions.sessions) == 1
    token = _session(client, sessions).csrf_token
    out = client.post("/admin/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert sessions.sessions == {}
    # The old cookie, presented again (e.g. copied before), opens nothing.
    client.cookies.set(SESSION_COOKIE, session_id)
    assert client.get("/ops/locations/LOC5").status_code == 401
    assert client.get("/admin").status_code == 303


def test_signing_in_makes_a_fresh_session_id(
    client: TestClient, sessions: InMemorySessionStore
) -> None:
    # A cookie planted before sign-in (session fixation) is not adopted.
    client.cookies.set(SESSION_COOKIE, "planted-by-someone", domain="testserver.local")
    resp = sign_in(client, "ada")
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "planted-by-someone" not in cookie
    assert len(sessions.sessions) == 1
    # Signed in, the form sends the browser on to the board.
    again = client.get("/admin/login")
    assert again.status_code == 303 and again.headers["location"] == "/admin"


def test_every_admin_route_but_sign_in_is_checked_by_the_table(app: FastAPI) -> None:
    admin = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.path.startswith("/admin"):
            for method in route.methods:
                calls = {d.call for d in route.dependant.dependencies}
                if (method, route.path) in OPEN_ADMIN_ROUTES:
                    assert admin_access not in calls
                else:
                    assert admin_access in calls, route.path
                    admin.add((method, route.path))
    assert admin == {k for k in ROUTE_ROLES if k[1].startswith("/admin")}
    assert len(admin) >= 3


def test_assets_are_ours_and_pages_allow_nothing_else(client: TestClient) -> None:
    page = client.get("/admin/login")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "http" not in re.sub(r"https?://testserver", "", page.text)  # no external URL
    js = client.get("/admin/static/board.js")
    assert js.status_code == 200 and "EventSource" in js.text
    assert client.get("/admin/static/admin.css").status_code == 200


class _AwayStore(InMemorySessionStore):
    """Redis gone: every read fails as the Redis client does."""

    async def _read(self, session_id: str, *, touch: bool) -> BrowserSession | None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("connection refused")


def test_failures_are_pages_in_words_never_a_trace(
    log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    away = _AwayStore(SessionPolicy(idle_s=600, absolute_s=3600))
    app = _app(log, store, away)
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as c:
        c.cookies.set(SESSION_COOKIE, "some-session")
        for path in ("/admin", "/admin/board/events"):
            resp = c.get(path)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.headers["content-type"].startswith("text/html")
            assert "did not answer in time" in resp.text and "Traceback" not in resp.text
        # /ops keeps its envelopes.
        assert c.get("/ops/locations/X").json()["status_code"] == 3000
        missing = c.get("/admin/no-such-page")
        assert missing.status_code == 404 and "No such page" in missing.text


def test_a_status_filtered_board_hears_its_evses_leave_the_status(
    app: FastAPI, client: TestClient, sessions: InMemorySessionStore
) -> None:
    from tests.unit.test_admin_live import resolved

    sign_in(client, "vic")
    hub = app.state.evse_hub
    hub.publish(resolved("E1", EvseStatus.OUTOFORDER))  # leaves AVAILABLE
    hub.publish(resolved("E2", EvseStatus.CHARGING, party="XYZ"))  # another party
    # One that matches every filter: were E1 held back, this would come first.
    hub.publish(resolved("E3", EvseStatus.AVAILABLE))
    with client.stream("GET", "/admin/board/events?status=AVAILABLE&party=NL-ABC&after=0") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = next(lines, None)
        data = next(line for line in lines if line.startswith("data: "))
    assert first == "id: 1"
    assert json.loads(data[6:])["status"] == "OUTOFORDER"
