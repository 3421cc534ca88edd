"""An OCPI 2.2.1 party built on extrawest-ocpi (PyPI, import name ``py_ocpi``),
run as a separate process by ``tests/peer/conftest.py`` in a virtualenv of its
own (tests/peer/requirements.txt): the independent implementation our
interoperability tests exchange with.

The library is a FastAPI toolkit: it brings the OCPI routes, models and
status handling, and leaves storage and authentication to the application
through a ``Crud`` and an ``Authenticator`` class. This module is that
application: both roles (CPO and eMSP) under one party, everything kept in
memory, plus a few ``/peer/...`` routes of ours (outside OCPI, no
authentication, bound to 127.0.0.1) through which the tests seed the peer's
own objects and read what it received.

It runs under the peer's interpreter (pydantic 1, FastAPI 0.101), never
imports the project, and is not collected by pytest.

Environment: ``PEER_PORT``, ``PEER_TOKEN_A`` (the token a partner registers
with), and the library's own settings (``OCPI_HOST``, ``PROTOCOL``,
``COUNTRY_CODE``, ``PARTY_ID``), which conftest sets before the library is
imported (it reads them at import).
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import Body, FastAPI
from py_ocpi import get_application
from py_ocpi.core.authentication.authenticator import Authenticator
from py_ocpi.core.crud import Crud
from py_ocpi.core.enums import Action, ModuleID, RoleEnum
from py_ocpi.modules.versions.enums import VersionNumber

PORT = int(os.environ["PEER_PORT"])
TOKEN_A = os.environ["PEER_TOKEN_A"]
COUNTRY_CODE = os.environ["COUNTRY_CODE"]
PARTY_ID = os.environ["PARTY_ID"]
BASE_URL = f"http://127.0.0.1:{PORT}"

# Objects this party owns: as CPO its locations, tariffs, sessions and CDRs,
# as eMSP its tokens. Keyed by module, then object id.
OWN: dict[str, dict[str, dict[str, Any]]] = {
    m: {} for m in ("locations", "tariffs", "sessions", "cdrs", "tokens")
}
# Objects partners sent to its Receiver interfaces, by module, then
# "CC/PID/ID" as the path named them (CDRs by their id alone).
RECEIVED: dict[str, dict[str, dict[str, Any]]] = {
    m: {} for m in ("locations", "tariffs", "sessions", "cdrs", "tokens")
}
# Registrations: the token C we issued -> {"credentials": theirs, "endpoints": ...}.
PARTNERS: dict[str, dict[str, Any]] = {}
# Commands received as CPO (their body and type), and results received as eMSP.
COMMANDS_RECEIVED: list[dict[str, Any]] = []
COMMAND_RESULTS: dict[str, dict[str, Any]] = {}
# What the CPO side answers to a command, and then posts as its result.
COMMAND_ANSWER: dict[str, Any] = {"result": "ACCEPTED", "timeout": 30}
COMMAND_RESULT: dict[str, Any] = {"result": "ACCEPTED"}


def _key(kwargs: dict[str, Any], object_id: Any) -> str:
    return f"{kwargs.get('country_code', '')}/{kwargs.get('party_id', '')}/{object_id}".upper()


def _our_credentials(token: str) -> dict[str, Any]:
    business = {"name": "Extrawest peer"}
    return {
        "token": token,
        "url": f"{BASE_URL}/ocpi/versions",
        "roles": [
            {
                "role": role,
                "business_details": business,
                "party_id": PARTY_ID,
                "country_code": COUNTRY_CODE,
            }
            for role in ("CPO", "EMSP")
        ],
    }


def _partner_token(token_c: str | None) -> str:
    """The token to call the partner that called us with ``token_c`` (or the
    only partner, when the library does not say who is asking)."""
    if token_c and token_c in PARTNERS:
        return str(PARTNERS[token_c]["credentials"]["token"])
    return str(next(iter(PARTNERS.values()))["credentials"]["token"])


def _updated(obj: dict[str, Any]) -> datetime:
    stamp = str(obj.get("last_updated", "1970-01-01T00:00:00Z")).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp)


class PeerAuthenticator(Authenticator):
    @classmethod
    async def get_valid_token_c(cls) -> list[str]:
        return list(PARTNERS)

    @classmethod
    async def get_valid_token_a(cls) -> list[str]:
        return [TOKEN_A]


class PeerCrud(Crud):
    @classmethod
    async def get(cls, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kwargs: Any) -> Any:
        if module == ModuleID.credentials_and_registration:
            partner = PARTNERS.get(id)
            return _our_credentials(id) if partner else None
        if module == ModuleID.commands:
            # Polled by the library after an ACCEPTED answer: the charger's result.
            return dict(COMMAND_RESULT)
        own_side = (role == RoleEnum.cpo and module != ModuleID.tokens) or (
            role == RoleEnum.emsp and module == ModuleID.tokens
        )
        if own_side:
            # Ids are CiStrings, and the library lowercases the ones it parses.
            return OWN[module.value].get(str(id).upper())
        if module == ModuleID.cdrs:
            return RECEIVED["cdrs"].get(str(id).upper())
        return RECEIVED[module.value].get(_key(kwargs, id))

    @classmethod
    async def list(
        cls, module: ModuleID, role: RoleEnum, filters: dict[str, Any], *args: Any, **kwargs: Any
    ) -> tuple[list[Any], int, bool]:
        objects = sorted(OWN[module.value].values(), key=_updated)
        if filters.get("date_from"):
            objects = [o for o in objects if _updated(o) >= filters["date_from"]]
        if filters.get("date_to"):
            objects = [o for o in objects if _updated(o) < filters["date_to"]]
        offset, limit = filters["offset"], filters["limit"]
        page = objects[offset : offset + limit]
        return page, len(objects), offset + limit >= len(objects)

    @classmethod
    async def create(
        cls, module: ModuleID, role: RoleEnum, data: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        if module == ModuleID.credentials_and_registration:
            token_c = secrets.token_urlsafe(24)
            PARTNERS[token_c] = data
            return _our_credentials(token_c)
        if module == ModuleID.cdrs:
            RECEIVED["cdrs"][str(data["id"]).upper()] = data
            return data
        RECEIVED[module.value][_key(kwargs, data.get("id", data.get("uid")))] = data
        return data

    @classmethod
    async def update(
        cls,
        module: ModuleID,
        role: RoleEnum,
        data: dict[str, Any],
        id: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if module == ModuleID.credentials_and_registration:
            token_c = kwargs["auth_token"]
            PARTNERS.pop(token_c, None)
            new_token = secrets.token_urlsafe(24)
            PARTNERS[new_token] = data
            return _our_credentials(new_token)
        if module == ModuleID.commands:
            COMMAND_RESULTS[str(id)] = data
            return data
        RECEIVED[module.value][_key(kwargs, id)] = data
        return data

    @classmethod
    async def delete(
        cls, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kwargs: Any
    ) -> None:
        if module == ModuleID.credentials_and_registration:
            PARTNERS.pop(id, None)
            return
        RECEIVED[module.value].pop(_key(kwargs, id), None)

    @classmethod
    async def do(
        cls,
        module: ModuleID,
        role: RoleEnum | None,
        action: Action,
        *args: Any,
        data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        if action == Action.get_client_token:
            return _partner_token(kwargs.get("auth_token"))
        if action == Action.send_command:
            body = data if data is not None else (args[0] if args else {})
            COMMANDS_RECEIVED.append({"command": str(kwargs.get("command")), "body": body})
            return dict(COMMAND_ANSWER)
        if action == Action.authorize_token:
            return {
                "allowed": "ALLOWED",
                "token": OWN["tokens"].get(str((data or {}).get("token_uid")).upper()),
            }
        return None


app: FastAPI = get_application(
    version_numbers=[VersionNumber.v_2_2_1],
    roles=[RoleEnum.cpo, RoleEnum.emsp],
    crud=PeerCrud,
    modules=[
        ModuleID.credentials_and_registration,
        ModuleID.locations,
        ModuleID.tariffs,
        ModuleID.tokens,
        ModuleID.sessions,
        ModuleID.cdrs,
        ModuleID.commands,
    ],
    authenticator=PeerAuthenticator,
    http_push=True,
)


# --- the tests' side door (not OCPI) -----------------------------------------


@app.put("/peer/own/{module}/{object_id}")
async def put_own(module: str, object_id: str, obj: dict = Body(...)) -> dict[str, Any]:  # noqa: B008
    OWN[module][object_id.upper()] = obj
    return {"stored": object_id}


@app.get("/peer/received/{module}")
async def get_received(module: str) -> dict[str, Any]:
    return RECEIVED[module]


@app.get("/peer/partners")
async def get_partners() -> list[dict[str, Any]]:
    """Each registration: our token C for the partner, its credentials and endpoints."""
    return [{"token_c": token, **data} for token, data in PARTNERS.items()]


@app.get("/peer/commands")
async def get_commands() -> dict[str, Any]:
    return {"received": COMMANDS_RECEIVED, "results": COMMAND_RESULTS}


@app.get("/peer/health")
async def health() -> dict[str, Any]:
    return {"ok": True, "at": datetime.now(UTC).isoformat()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="info")
