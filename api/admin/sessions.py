"""Browser sessions of the admin dashboard (docs/adr/0033).

A session is server-side state in Redis, named by the SHA-256 of a random
id the browser holds in an HttpOnly cookie: whoever reads Redis cannot sign
in with what they read, and ending a session (logout, expiry) takes effect
at once for every API process. A session lasts at most ``absolute_s`` from
sign-in and ends after ``idle_s`` without a request; Redis's key expiry
enforces the idle limit, and every read checks both, so a key that outlived
its time (a clock step, a TTL set by an older version) is not honoured.

Each session carries its own CSRF token: pages put it in every form (and
the board's scripts in an ``X-CSRF-Token`` header); every unsafe request a
session makes must present it, compared in constant time. A forged
cross-site request carries the cookie but cannot read the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import redis.asyncio as aioredis

SESSION_COOKIE = "ocpi_hub_session"
# The sign-in form's own CSRF token (double submit: cookie and form field),
# so nobody can sign a browser in to an account of theirs (login CSRF).
LOGIN_CSRF_COOKIE = "ocpi_hub_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Longer values are not ours: refused before any hashing or lookup.
_MAX_TOKEN = 100


def new_token() -> str:
    """256 random bits, URL-safe: a session id or a CSRF token."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str, presented: str | None) -> bool:
    """Whether ``presented`` is ``expected``, in time independent of where
    they differ (hmac.compare_digest); a missing or empty one never is."""
    if not presented or not expected or len(presented) > _MAX_TOKEN:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


@dataclass(frozen=True)
class SessionPolicy:
    idle_s: int
    absolute_s: int

    def alive(self, session: BrowserSession, now: float) -> bool:
        return now - session.created_at < self.absolute_s and now - session.last_seen < self.idle_s

    def ttl_s(self, session: BrowserSession, now: float) -> int:
        """How long the session may live from ``now`` if nothing else comes."""
        left = min(self.idle_s, session.created_at + self.absolute_s - now)
        return max(int(left), 1)


@dataclass(frozen=True)
class BrowserSession:
    login: str
    csrf_token: str
    created_at: float
    last_seen: float


class SessionStore(Protocol):
    async def create(self, login: str) -> tuple[str, BrowserSession]:
        """A new session of ``login``: its id (the cookie's value) and state."""
        ...

    async def get(self, session_id: str) -> BrowserSession | None:
        """The live session ``session_id`` names, its idle time restarted; None
        when there is none (never made, logged out, expired)."""
        ...

    async def peek(self, session_id: str) -> BrowserSession | None:
        """As ``get``, without counting as activity (the board's long-lived
        stream asks whether its session still lives)."""
        ...

    async def delete(self, session_id: str) -> None: ...


def _name(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _valid_id(session_id: str) -> bool:
    return 0 < len(session_id) <= _MAX_TOKEN


class RedisSessionStore:
    """Sessions as Redis strings (JSON), shared by every API process."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        policy: SessionPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.policy = policy
        self._clock = clock

    def key(self, session_id: str) -> str:
        return f"{self._prefix}ocpi-hub:admin-session:{_name(session_id)}"

    async def create(self, login: str) -> tuple[str, BrowserSession]:
        now = self._clock()
        session_id = new_token()
        session = BrowserSession(login, new_token(), now, now)
        await self._redis.set(
            self.key(session_id), json.dumps(asdict(session)), ex=self.policy.ttl_s(session, now)
        )
        return session_id, session

    async def _read(self, session_id: str, *, touch: bool) -> BrowserSession | None:
        if not _valid_id(session_id):
            return None
        key = self.key(session_id)
        raw = await self._redis.get(key)
        if raw is None:
            return None
        session = BrowserSession(**json.loads(raw))
        now = self._clock()
        if not self.policy.alive(session, now):
            await self._redis.delete(key)
            return None
        if touch:
            session = BrowserSession(session.login, session.csrf_token, session.created_at, now)
            # XX: a logout between our read and this write is not undone.
            await self._redis.set(
                key, json.dumps(asdict(session)), ex=self.policy.ttl_s(session, now), xx=True
            )
        return session

    async def get(self, session_id: str) -> BrowserSession | None:
        return await self._read(session_id, touch=True)

    async def peek(self, session_id: str) -> BrowserSession | None:
        return await self._read(session_id, touch=False)

    async def delete(self, session_id: str) -> None:
        if _valid_id(session_id):
            await self._redis.delete(self.key(session_id))


class InMemorySessionStore:
    """For tests of the HTTP shell without services; the clock is injectable."""

    def __init__(self, policy: SessionPolicy, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self._clock = clock
        self.sessions: dict[str, BrowserSession] = {}

    async def create(self, login: str) -> tuple[str, BrowserSession]:
        now = self._clock()
        session_id = new_token()
        self.sessions[_name(session_id)] = BrowserSession(login, new_token(), now, now)
        return session_id, self.sessions[_name(session_id)]

    async def _read(self, session_id: str, *, touch: bool) -> BrowserSession | None:
        session = self.sessions.get(_name(session_id))
        now = self._clock()
        if session is None or not self.policy.alive(session, now):
            self.sessions.pop(_name(session_id), None)
            return None
        if touch:
            session = BrowserSession(session.login, session.csrf_token, session.created_at, now)
            self.sessions[_name(session_id)] = session
        return session

    async def get(self, session_id: str) -> BrowserSession | None:
        return await self._read(session_id, touch=True)

    async def peek(self, session_id: str) -> BrowserSession | None:
        return await self._read(session_id, touch=False)

    async def delete(self, session_id: str) -> None:
        self.sessions.pop(_name(session_id), None)
