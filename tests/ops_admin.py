"""For in-process tests of ops routes whose subject is not access: every
caller is an admin API key (the access check itself is tested in
tests/unit/test_ops_access.py and over HTTP in the e2e tier)."""

from __future__ import annotations

from fastapi import FastAPI

from api.ops.access import Principal, ops_access
from producers.write_path import act_as
from schemas.events import Actor
from schemas.events.operators import OperatorRole

ACTOR = Actor(kind="api_key", id="testadmin000")


async def _admin() -> Principal:
    act_as(ACTOR)
    return Principal(ACTOR, OperatorRole.ADMIN)


def as_admin(app: FastAPI) -> FastAPI:
    """The app, its ops routes called by an admin."""
    app.dependency_overrides[ops_access] = _admin
    return app
