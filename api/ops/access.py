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

Credentials: an API key, ``Authorization: Bearer ohk_...``. /ops is not
OCPI, so not OCPI's ``Token`` scheme: a partner's token must never be
mistaken for an operator's key, nor the other way round. Or a browser
session of the admin dashboard (its cookie, api/admin/sessions.py), acting
as its account with the account's role *now* (a disabled account's
sessions end, a new role applies at once), by the same table; a cookie is
sent by the browser on its own, so an unsafe request made with one must
also carry the session's CSRF token (docs/adr/0033). The dashboard's pages
(``/admin``, ``admin_access``) take only the session: a page answers a
browser with a page, never an API error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

import structlog
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.admin.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    BrowserSession,
    SessionStore,
    tokens_match,
)
from api.errors import OcpiError
from producers.lookups import LookupCache
from producers.operators import (
    ACCOUNTS,
    KEY_PREFIX,
    AccountState,
    ApiKeyState,
    hash_api_key,
    satisfies,
)
from producers.write_path import WritePath, act_as
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
    # corporate billing (docs/adr/0035): customers and their members are billing's
    ("POST", "/ops/corporations"): BILLING,
    ("GET", "/ops/corporations"): BILLING,
    ("GET", "/ops/corporations/{corporation_id}"): BILLING,
    ("POST", "/ops/corporations/{corporation_id}/status"): BILLING,
    ("POST", "/ops/corporations/{corporation_id}/members"): BILLING,
    ("GET", "/ops/corporations/{corporation_id}/members"): BILLING,
    ("POST", "/ops/corporations/{corporation_id}/members/{member_id}/invitation"): BILLING,
    # invoices (docs/adr/0036): closing a month, reading and settling invoices
    ("POST", "/ops/billing/months/{month}/close"): BILLING,
    ("GET", "/ops/invoices"): BILLING,
    ("GET", "/ops/invoices/{invoice_id}"): BILLING,
    ("POST", "/ops/invoices/{invoice_id}/paid"): BILLING,
    ("POST", "/ops/invoices/{invoice_id}/void"): BILLING,
    # an invoice's files and e-mails (docs/adr/0040)
    ("GET", "/ops/invoices/{invoice_id}/pdf"): BILLING,
    ("GET", "/ops/invoices/{invoice_id}/xml"): BILLING,
    ("GET", "/ops/invoices/{invoice_id}/csv"): BILLING,
    ("POST", "/ops/invoices/{invoice_id}/mail"): BILLING,
    ("GET", "/ops/invoices/{invoice_id}/mailings"): BILLING,
    # credit notes (docs/adr/0041): refunds requested, approved, rejected, read
    ("POST", "/ops/invoices/{invoice_id}/credit-notes"): BILLING,
    ("POST", "/ops/credit-notes/{credit_note_id}/approve"): BILLING,
    ("POST", "/ops/credit-notes/{credit_note_id}/reject"): BILLING,
    ("GET", "/ops/credit-notes"): BILLING,
    ("GET", "/ops/credit-notes/{credit_note_id}"): BILLING,
    ("GET", "/ops/credit-notes/{credit_note_id}/pdf"): BILLING,
    ("GET", "/ops/credit-notes/{credit_note_id}/xml"): BILLING,
    ("GET", "/ops/credit-notes/{credit_note_id}/csv"): BILLING,
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
    ("POST", "/ops/commands/given/{command}"): OPERATOR,
    # charging profiles as eMSP (docs/adr/0043)
    ("PUT", "/ops/charging-profiles/sent/{partner_id}/{session_id}"): OPERATOR,
    ("DELETE", "/ops/charging-profiles/sent/{partner_id}/{session_id}"): OPERATOR,
    ("POST", "/ops/charging-profiles/sent/{partner_id}/{session_id}/active"): OPERATOR,
    ("GET", "/ops/charging-profiles/sent/{request_id}"): VIEWER,
    ("GET", "/ops/charging-profiles/active/{country_code}/{party_id}/{session_id}"): VIEWER,
    # CDRs are money: read and credited by billing
    ("GET", "/ops/cdrs/reconciliation"): BILLING,
    ("GET", "/ops/cdrs/{cdr_id}"): BILLING,
    ("POST", "/ops/cdrs/{cdr_id}/credit"): BILLING,
    # payment terminals (OCPI 2.3.0 Payments, docs/adr/0047): the network's
    # (operator); what was captured is money (billing)
    ("PUT", "/ops/payments/terminals/{ptp_partner_id}/{terminal_id}/assignment"): OPERATOR,
    ("PUT", "/ops/payments/terminals/{ptp_partner_id}/{terminal_id}"): OPERATOR,
    ("POST", "/ops/payments/terminals/{ptp_partner_id}/activate"): OPERATOR,
    ("POST", "/ops/payments/terminals/{ptp_partner_id}/{terminal_id}/deactivate"): OPERATOR,
    ("GET", "/ops/payments/terminals"): VIEWER,
    ("GET", "/ops/payments/terminals/{ptp_partner_id}/{terminal_id}"): VIEWER,
    ("GET", "/ops/payments/financial-advice-confirmations"): BILLING,
    # our roaming partners: anyone may look; inviting, rotating and
    # unregistering are admin's
    ("GET", "/ops/partners"): VIEWER,
    ("GET", "/ops/partners/{partner_id}/client-info"): VIEWER,
    ("POST", "/ops/partners"): ADMIN,
    ("POST", "/ops/partners/{partner_id}/rotate"): ADMIN,
    ("DELETE", "/ops/partners/{partner_id}"): ADMIN,
    # who did what
    ("GET", "/ops/audit"): ADMIN,
    # the dashboard (its sign-in page is the one /admin route open to all)
    ("GET", "/admin"): VIEWER,
    ("GET", "/admin/board/events"): VIEWER,
    ("GET", "/admin/chargers"): VIEWER,
    ("GET", "/admin/chargers/{charge_point_id}"): VIEWER,
    ("GET", "/admin/sessions"): VIEWER,
    ("GET", "/admin/cdrs"): BILLING,
    ("GET", "/admin/corporations"): BILLING,
    ("GET", "/admin/corporations/{corporation_id}"): BILLING,
    ("GET", "/admin/invoices"): BILLING,
    ("GET", "/admin/invoices/{invoice_id}"): BILLING,
    ("GET", "/admin/partners"): VIEWER,
    ("GET", "/admin/locations"): VIEWER,
    ("GET", "/admin/locations/{country_code}/{party_id}/{location_id}"): VIEWER,
    ("GET", "/admin/map/{name}"): VIEWER,
    ("GET", "/admin/tokens"): VIEWER,
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/admin/charts"): VIEWER,
    ("POST", "/admin/logout"): VIEWER,
}

# The /admin routes anyone may call: the sign-in form and its answer.
OPEN_ADMIN_ROUTES = frozenset({("GET", "/admin/login"), ("POST", "/admin/login")})


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


@dataclass(frozen=True)
class SignedIn:
    """A live browser session and the account behind it, as it is now."""

    session_id: str
    session: BrowserSession
    account: AccountState

    @property
    def principal(self) -> Principal:
        return Principal(Actor(kind="account", id=self.account.login), self.account.role)


async def signed_in(request: Request, *, touch: bool = True) -> SignedIn | None:
    """The request's browser session, if its cookie names a live one whose
    account is still enabled (a disabled account's sessions end here)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    sessions: SessionStore = request.app.state.sessions
    session = await (sessions.get(session_id) if touch else sessions.peek(session_id))
    if session is None:
        return None
    path: WritePath = request.app.state.write_path
    account = await path.state(ACCOUNTS, session.login)
    if account is None or account.disabled:
        await sessions.delete(session_id)
        return None
    return SignedIn(session_id, session, account)


async def presented_csrf(request: Request) -> str | None:
    """The CSRF token an unsafe request carries: the header (scripts) or the
    form field (pages; only url-encoded forms are read)."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    return (await form_fields(request)).get(CSRF_FIELD)


_MAX_FORM_BYTES = 16 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form (the first value of each); {} for
    any other body or one larger than any form of ours. Parsed here rather
    than by Starlette, which needs python-multipart even for these."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()  # cached: the route may read it again
    if len(body) > _MAX_FORM_BYTES:
        return {}
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in parsed.items()}


_BAD_CSRF = "the request did not carry this session's CSRF token; reload the page and try again"


def _forbidden(need: OperatorRole) -> str:
    return f"this needs the role {need.value} or one above it"


def _authorize(request: Request, principal: Principal) -> bool:
    path = _route_path(request)
    need = required_role(request.method, path)
    structlog.contextvars.bind_contextvars(actor=str(principal.actor))
    if not satisfies(principal.role, need):
        log.info("ops_forbidden", path=path, method=request.method, role=principal.role.value)
        return False
    # Everything this request records is the caller's (docs/adr/0031).
    act_as(principal.actor)
    request.state.principal = principal
    return True


async def ops_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated, authorized caller of an ops route (or 401/403)."""
    if credentials is not None:
        key = await _api_key(request.app.state.api_keys, credentials.credentials)
        if key is None:
            raise _unauthorized()
        principal = Principal(Actor(kind="api_key", id=key.key_id), key.role)
    elif request.headers.get("authorization"):  # another scheme: not ours
        raise _unauthorized()
    else:
        browser = await signed_in(request)
        if browser is None:
            raise _unauthorized()
        if request.method not in SAFE_METHODS and not tokens_match(
            browser.session.csrf_token, await presented_csrf(request)
        ):
            log.info("csrf_refused", path=request.url.path, method=request.method)
            raise OcpiError(OcpiStatus.CLIENT_ERROR, _BAD_CSRF, 403)
        principal = browser.principal
    if not _authorize(request, principal):
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            _forbidden(required_role(request.method, _route_path(request))),
            403,
        )
    return principal


class AdminRefusedError(Exception):
    """An /admin request refused: answered with a page or a redirect to the
    sign-in form (api/admin/pages.py installs the handler)."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message


async def admin_access(request: Request) -> SignedIn:
    """The signed-in, authorized browser of an /admin route: no session is
    a redirect to the sign-in form (a GET) or 401; a role too weak or a
    missing CSRF token on an unsafe request, 403."""
    browser = await signed_in(request)
    if browser is None:
        raise AdminRefusedError(401, "Please sign in.")
    if request.method not in SAFE_METHODS and not tokens_match(
        browser.session.csrf_token, await presented_csrf(request)
    ):
        log.info("csrf_refused", path=request.url.path, method=request.method)
        raise AdminRefusedError(
            403,
            "This form has expired or did not come from this site. "
            + "Reload the page and try again.",
        )
    if not _authorize(request, browser.principal):
        need = required_role(request.method, _route_path(request))
        raise AdminRefusedError(
            403, f"Your role ({browser.account.role.value}) cannot do this: it needs {need.value}."
        )
    return browser


OPS_ACCESS = Depends(ops_access)
PrincipalDep = Annotated[Principal, OPS_ACCESS]
ADMIN_ACCESS = Depends(admin_access)
SignedInDep = Annotated[SignedIn, ADMIN_ACCESS]
