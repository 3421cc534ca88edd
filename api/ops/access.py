"""Who may use the ops API, and for what (docs/adr/0031).

Every ops router declares ``dependencies=[OPS_ACCESS]``: one check per
router, never per handler. It finds the caller's credentials, then the role
the route needs in ``ROUTE_ROLES``, the one table of the ops API, and
either lets the request through, acting as the caller (every event the
request records names it: ``producers.write_path.act_as``), or answers in
the ops API's error shape (an OCPI envelope):

* HTTP 401, status 2000, when the credentials are missing, unknown, revoked
  or malformed, in one message, so a caller learns nothing about which part
  was wrong;
* HTTP 403, status 2000, when the caller's role is too weak.

Credentials today: an API key, ``Authorization: Bearer ohk_...``. /ops is
not OCPI, so not OCPI's ``Token`` scheme: a partner's token must never be
mistaken for an operator's key, nor the other way round. The browser
session (issue 13, next part) is checked here too, by the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import OcpiError
from producers.lookups import LookupCache
from producers.operators import KEY_PREFIX, ApiKeyState, hash_api_key, satisfies
from producers.write_path import act_as
from schemas.events import Actor
from schemas.events.operators import OperatorRole
from schemas.ocpi.status_codes import OcpiStatus

log = structlog.get_logger(__name__)

VIEWER = OperatorRole.VIEWER
OPERATOR = OperatorRole.OPERATOR
BILLING = OperatorRole.BILLING
ADMIN = OperatorRole.ADMIN

_LOCATION = "/ops/locations/{location_id}"
_EVSE = _LOCATION + "/{evse_uid}"
_CONNECTOR = _EVSE + "/{connector_id}"

# (method, route path) -> the weakest role that may call it. viewer reads;
# operator runs the network (locations, tokens, chargers, commands);
# billing handles money (tariffs, CDRs); admin may do all of it and reads
# the audit trail. A route missing here needs admin (and a unit test fails).
ROUTE_ROLES: dict[tuple[str, str], OperatorRole] = {
    # the MySQL hierarchy
    ("GET", "/ops/evses"): VIEWER,
    ("GET", "/ops/sites"): VIEWER,
    # our locations
    **{("GET", path): VIEWER for path in (_LOCATION, _EVSE, _CONNECTOR)},
    **{(m, path): OPERATOR for m in ("PUT", "PATCH") for path in (_LOCATION, _EVSE, _CONNECTOR)},
    # our tariffs: prices are billing's
    ("GET", "/ops/tariffs/{tariff_id}"): VIEWER,
    ("PUT", "/ops/tariffs/{tariff_id}"): BILLING,
    ("PATCH", "/ops/tariffs/{tariff_id}"): BILLING,
    ("DELETE", "/ops/tariffs/{tariff_id}"): BILLING,
    # our tokens, and tokens presented at our chargers
    ("GET", "/ops/tokens/{token_uid}"): VIEWER,
    ("PUT", "/ops/tokens/{token_uid}"): OPERATOR,
    ("PATCH", "/ops/tokens/{token_uid}"): OPERATOR,
    ("PUT", "/ops/tokens/{token_uid}/policy"): OPERATOR,
    ("POST", "/ops/authorize"): OPERATOR,
    # what our chargers report (the simulator) and the charge point registry
    ("POST", "/ops/chargers/transactions/{kind}"): OPERATOR,
    ("GET", "/ops/charge-points/{charge_point_id}"): VIEWER,
    ("PUT", "/ops/charge-points/{charge_point_id}"): OPERATOR,
    ("DELETE", "/ops/charge-points/{charge_point_id}"): OPERATOR,
    # commands, both roles
    ("POST", "/ops/commands/sent/{partner_id}/{command}"): OPERATOR,
    ("GET", "/ops/commands/sent/{command_id}"): VIEWER,
    ("GET", "/ops/commands/sent"): VIEWER,
    ("GET", "/ops/commands/received/{command_id}"): VIEWER,
    # CDRs are money: read and credited by billing
    ("GET", "/ops/cdrs/reconciliation"): BILLING,
    ("GET", "/ops/cdrs/{cdr_id}"): BILLING,
    ("POST", "/ops/cdrs/{cdr_id}/credit"): BILLING,
    # who did what
    ("GET", "/ops/audit"): ADMIN,
}


def required_role(method: str, path: str) -> OperatorRole:
    """The role a route needs; admin for a route the table does not name
    (closed by default)."""
    return ROUTE_ROLES.get((method, path), ADMIN)


@dataclass(frozen=True)
class Principal:
    """The caller of an ops request, once authenticated."""

    actor: Actor
    role: OperatorRole


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OpsApiKey",
    description="An ops API key (`ocpi-hub api-keys create`): `Authorization: Bearer ohk_...`",
)

_UNAUTHORIZED = "missing or invalid credentials"


def _unauthorized() -> OcpiError:
    return OcpiError(
        OcpiStatus.CLIENT_ERROR, _UNAUTHORIZED, 401, headers={"WWW-Authenticate": "Bearer"}
    )


async def _api_key(keys: LookupCache[ApiKeyState], presented: str) -> ApiKeyState | None:
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    state = await keys.find(hash_api_key(presented))
    return state if state is not None and not state.revoked else None


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return route.path if isinstance(route, APIRoute) else request.url.path


async def ops_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated, authorized caller of an ops route (or 401/403)."""
    if credentials is None:
        raise _unauthorized()
    key = await _api_key(request.app.state.api_keys, credentials.credentials)
    if key is None:
        raise _unauthorized()
    path = _route_path(request)
    need = required_role(request.method, path)
    principal = Principal(Actor(kind="api_key", id=key.key_id), key.role)
    structlog.contextvars.bind_contextvars(actor=str(principal.actor))
    if not satisfies(principal.role, need):
        log.info("ops_forbidden", path=path, method=request.method, role=principal.role.value)
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR, f"this needs the role {need.value} or one above it", 403
        )
    # Everything this request records is the caller's (docs/adr/0031).
    act_as(principal.actor)
    request.state.principal = principal
    return principal


OPS_ACCESS = Depends(ops_access)
PrincipalDep = Annotated[Principal, OPS_ACCESS]
