"""The operators slice: who may use the ops API, and with which role
(docs/adr/0031). Pure but for the password hash (argon2id, CPU only).

Two aggregates, each its own topic and ``Slice``: operator *accounts*
(people, keyed by login; ``ACCOUNTS``) and *API keys* (machines, keyed by
key id; ``API_KEYS``, found also by the hash of the key they present,
docs/adr/0024). Both are written through the one write path like every
other slice (docs/adr/0022), by the ``ocpi-hub users`` and ``ocpi-hub
api-keys`` commands; the MongoDB views (projections/mongo/operators.py)
are the same folds for readers.

The roles form a small lattice: ``viewer`` reads; ``operator`` and
``billing`` each add their own writes; ``admin`` may do everything
(``satisfies``). Which route needs which role is one table,
api/ops/access.py.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict

from producers.write_path import (
    Decision,
    Origin,
    Slice,
    conflict,
    recorded_now,
    unknown,
)
from schemas.events.operators import (
    AccountEvent,
    ApiKeyCreated,
    ApiKeyCreatedPayload,
    ApiKeyEvent,
    ApiKeyRevoked,
    ApiKeyRevokedPayload,
    OperatorAccountAdded,
    OperatorAccountAddedPayload,
    OperatorAccountDisabled,
    OperatorAccountDisabledPayload,
    OperatorRole,
    OperatorRoleSet,
    OperatorRoleSetPayload,
)
from schemas.topics import API_KEYS, OPERATOR_ACCOUNTS

# --- roles -----------------------------------------------------------------------

# What each role may do beyond its own name: viewer < operator < admin and
# viewer < billing < admin; operator and billing are not comparable (an
# operator does not credit CDRs, billing does not move chargers).
_GRANTS: dict[OperatorRole, frozenset[OperatorRole]] = {
    OperatorRole.VIEWER: frozenset({OperatorRole.VIEWER}),
    OperatorRole.OPERATOR: frozenset({OperatorRole.VIEWER, OperatorRole.OPERATOR}),
    OperatorRole.BILLING: frozenset({OperatorRole.VIEWER, OperatorRole.BILLING}),
    OperatorRole.ADMIN: frozenset(OperatorRole),
}


def satisfies(have: OperatorRole, need: OperatorRole) -> bool:
    """Whether a caller with role ``have`` may use a route that needs ``need``."""
    return need in _GRANTS[have]


# --- secrets ---------------------------------------------------------------------

# argon2-cffi's defaults (RFC 9106's second recommended option: 64 MiB,
# 3 passes, 4 lanes): ~170 ms of CPU (~125 ms wall) per hash or check on
# our 2 cores (docs/adr/0031), paid at each sign-in, never per request.
_HASHER = PasswordHasher()

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def hash_password(password: str) -> str:
    """The argon2id PHC string of a password (salted; CPU-heavy: call it off
    the event loop)."""
    check_password(password)
    return _HASHER.hash(password)


def check_password(password: str) -> None:
    """A password we accept for an account (length only: NIST SP 800-63B)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` made ``encoded`` (a malformed hash verifies nothing)."""
    try:
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the login is unknown or disabled, so
    that such an attempt costs what a wrong password costs (no timing hint).
    Made at the first sign-in of the process, whichever its login (a hash
    at import cost every process and command ~140 ms, and few sign in)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


KEY_PREFIX = "ohk_"


def new_api_key() -> tuple[str, str]:
    """A fresh key id and the key a machine presents: ``ohk_<id>_<secret>``,
    256 random bits in the secret. The prefix lets secret scanners find
    leaked keys; the id names the key in logs and the audit."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> str:
    """SHA-256 (hex) of a presented key: fast on purpose, since a key is
    checked on every request and 256 random bits cannot be guessed
    (docs/adr/0031)."""
    return hashlib.sha256(key.encode()).hexdigest()


# --- accounts ----------------------------------------------------------------------


class AccountState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    login: str
    display_name: str
    role: OperatorRole
    password_hash: str
    disabled: bool = False
    created_at: datetime
    updated_at: datetime


def evolve_account(state: AccountState | None, event: AccountEvent) -> AccountState | None:
    if isinstance(event, OperatorAccountAdded):
        p = event.payload
        return AccountState(
            login=p.login,
            display_name=p.display_name,
            role=p.role,
            password_hash=p.password_hash,
            created_at=p.at,
            updated_at=p.at,
        )
    if state is None:  # a change of an account the log does not hold: nothing
        return None
    if isinstance(event, OperatorRoleSet):
        return state.model_copy(update={"role": event.payload.role, "updated_at": event.payload.at})
    return state.model_copy(update={"disabled": True, "updated_at": event.payload.at})


def shown_account(state: AccountState) -> dict[str, Any]:
    """What a listing shows of an account: never the hash."""
    return state.model_dump(mode="json", exclude={"password_hash"})


ACCOUNTS: Slice[AccountState] = Slice(
    "operator_accounts",
    OPERATOR_ACCOUNTS,
    evolve_account,
    lambda state: state.model_dump_json().encode(),
    AccountState.model_validate_json,
)


def decide_add_account(
    state: AccountState | None,
    *,
    login: str,
    display_name: str,
    role: OperatorRole,
    password_hash: str,
    origin: Origin,
    now: datetime,
) -> Decision[AccountState]:
    """A login is given once: a disabled account keeps it (its audit trail
    names it), so it is not handed to someone else."""
    if state is not None:
        raise conflict(f"account {login!r} exists")
    event = OperatorAccountAdded(
        **recorded_now(login, now, origin),
        payload=OperatorAccountAddedPayload(
            login=login, display_name=display_name, role=role, password_hash=password_hash, at=now
        ),
    )
    after = evolve_account(None, event)
    assert after is not None
    return Decision([event], after)


def decide_set_role(
    state: AccountState | None, *, login: str, role: OperatorRole, origin: Origin, now: datetime
) -> Decision[AccountState]:
    if state is None:
        raise unknown(f"account {login!r}")
    if state.role is role:
        return Decision([], state)
    event = OperatorRoleSet(
        **recorded_now(login, now, origin),
        payload=OperatorRoleSetPayload(login=login, role=role, at=now),
    )
    after = evolve_account(state, event)
    assert after is not None
    return Decision([event], after)


def decide_disable(
    state: AccountState | None, *, login: str, origin: Origin, now: datetime
) -> Decision[AccountState]:
    if state is None:
        raise unknown(f"account {login!r}")
    if state.disabled:
        return Decision([], state)
    event = OperatorAccountDisabled(
        **recorded_now(login, now, origin),
        payload=OperatorAccountDisabledPayload(login=login, at=now),
    )
    after = evolve_account(state, event)
    assert after is not None
    return Decision([event], after)


def account_that_signs_in(state: AccountState | None, password: str) -> AccountState | None:
    """The account, when ``password`` is its password and it is not
    disabled; else None, after the same work either way (the caller learns
    nothing about which part was wrong). CPU-heavy: off the event loop.
    The browser login calls this with the state ``WritePath.state`` reads."""
    dummy = _dummy_hash()
    if state is None or state.disabled:
        verify_password(password, dummy)
        return None
    return state if verify_password(password, state.password_hash) else None


# --- API keys ----------------------------------------------------------------------


class ApiKeyState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    name: str
    role: OperatorRole
    key_hash: str
    revoked: bool = False
    created_at: datetime
    revoked_at: datetime | None = None


def evolve_api_key(state: ApiKeyState | None, event: ApiKeyEvent) -> ApiKeyState | None:
    if isinstance(event, ApiKeyCreated):
        p = event.payload
        return ApiKeyState(
            key_id=p.key_id, name=p.name, role=p.role, key_hash=p.key_hash, created_at=p.at
        )
    if state is None:
        return None
    return state.model_copy(update={"revoked": True, "revoked_at": event.payload.at})


def key_hashes(state: ApiKeyState) -> Sequence[str]:
    """The name a key is found by: its hash, while it is not revoked."""
    return () if state.revoked else (state.key_hash,)


def shown_api_key(state: ApiKeyState) -> dict[str, Any]:
    return state.model_dump(mode="json", exclude={"key_hash"})


API_KEYS_SLICE: Slice[ApiKeyState] = Slice(
    "api_keys",
    API_KEYS,
    evolve_api_key,
    lambda state: state.model_dump_json().encode(),
    ApiKeyState.model_validate_json,
    key_hashes,
)


def decide_create_key(
    state: ApiKeyState | None,
    *,
    key_id: str,
    name: str,
    role: OperatorRole,
    key_hash: str,
    origin: Origin,
    now: datetime,
) -> Decision[ApiKeyState]:
    if state is not None:  # 62 bits of id: a clash is a bug, not bad luck
        raise conflict(f"API key id {key_id!r} exists")
    event = ApiKeyCreated(
        **recorded_now(key_id, now, origin),
        payload=ApiKeyCreatedPayload(
            key_id=key_id, name=name, role=role, key_hash=key_hash, at=now
        ),
    )
    after = evolve_api_key(None, event)
    assert after is not None
    return Decision([event], after)


def decide_revoke_key(
    state: ApiKeyState | None, *, key_id: str, origin: Origin, now: datetime
) -> Decision[ApiKeyState]:
    if state is None:
        raise unknown(f"API key {key_id!r}")
    if state.revoked:
        return Decision([], state)
    event = ApiKeyRevoked(
        **recorded_now(key_id, now, origin), payload=ApiKeyRevokedPayload(key_id=key_id, at=now)
    )
    after = evolve_api_key(state, event)
    assert after is not None
    return Decision([event], after)
