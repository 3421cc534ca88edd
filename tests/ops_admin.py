"""Ops credentials for tests. ``as_admin``: for in-process tests of ops
routes whose subject is not access, every caller is an admin (the access
check itself is tested in tests/unit/test_ops_access.py and over HTTP in
tests/e2e/test_ops_access.py). ``issue_key``: a real key on the real
write path."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from api.ops.access import Principal, ops_access
from producers.operators import API_KEYS_SLICE, decide_create_key, hash_api_key, new_api_key
from producers.write_path import Origin, WritePath, act_as
from schemas.events import Actor, Party
from schemas.events.operators import OperatorRole

ACTOR = Actor(kind="api_key", id="testadmin000")


async def _admin() -> Principal:
    act_as(ACTOR)
    return Principal(ACTOR, OperatorRole.ADMIN)


def as_admin(app: FastAPI) -> FastAPI:
    """The app, its ops routes called by an admin."""
    app.dependency_overrides[ops_access] = _admin
    return app


async def issue_key(write_path: WritePath, role: OperatorRole = OperatorRole.ADMIN) -> str:
    """A real API key of ``role``, recorded through ``write_path`` as
    ``ocpi-hub api-keys create`` records it: for tests on the real services."""
    key_id, key = new_api_key()
    origin = Origin(Party(country_code="ZZ", party_id="HUB"), f"test-{key_id}")
    await write_path.write(
        API_KEYS_SLICE,
        key_id,
        lambda state: decide_create_key(
            state,
            key_id=key_id,
            name="test",
            role=role,
            key_hash=hash_api_key(key),
            origin=origin,
            now=datetime.now(UTC),
        ),
    )
    return key
