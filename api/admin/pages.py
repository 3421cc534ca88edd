"""The admin dashboard's pages (docs/adr/0033): sign-in, sign-out and the
live EVSE status board, server-rendered with Jinja2; every asset is served
from ``api/admin/static`` (the pages' Content-Security-Policy allows
nothing else).

Who may see which page is ``api/ops/access.py``'s table, checked by
``ADMIN_ACCESS`` on every route but the sign-in form's two. Refusals and
failures are pages in words, never a trace.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.admin.charts import (
    ChartSamples,
    accepted_per_minute,
    bar_chart,
    lag_series,
    line_chart,
    status_series,
)
from api.admin.live import BoardFilter, EvseStatusHub, OnDemandFeed, board_stream
from api.admin.render import HEADERS, error_page, page
from api.admin.sessions import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SessionStore,
    new_token,
    tokens_match,
)
from api.admin.shown import (
    ACTIVE_STATES,
    PAST_STATES,
    ago,
    cdr_row,
    location_pin,
    location_row,
    partner_row,
    reconciliation_row,
    session_row,
    status_history,
    token_row,
    when,
)
from api.health import readiness
from api.ops.access import (
    ADMIN_ACCESS,
    AdminRefusedError,
    SignedInDep,
    form_fields,
    signed_in,
)
from api.ops.evses import KEY_TEXT
from api.ops.partners import shown as shown_partner
from api.public.discovery import client_address
from api.rate_limit import RateLimiter
from gateway.message_log import heartbeat_key, recent_messages
from ocpi_hub.bootstrap import Container
from ocpi_hub.settings import Settings
from producers.cdrs import credit_key
from producers.charge_points import CHARGE_POINT_ID_PATTERN
from producers.operators import ACCOUNTS, account_that_signs_in, satisfies
from producers.partner_stats import PUSH_LANES, RedisPushStats
from producers.received_commands import presence_key, seen_key
from producers.write_path import WritePath
from projections.mysql.sites import OpsQuery
from schemas.events import Party
from schemas.events.operators import LOGIN_PATTERN, OperatorRole
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.locations import EvseStatus

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
STATUSES = [s.value for s in EvseStatus]

public = APIRouter(prefix="/admin", include_in_schema=False)
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[ADMIN_ACCESS])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.container.settings
    return settings


def _secure(request: Request, settings: Settings) -> bool:
    if settings.admin_cookie_secure == "auto":
        return request.url.scheme == "https"
    return settings.admin_cookie_secure == "always"


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, path: str = "/"
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=_secure(request, _settings(request)),
    )


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: one of our pages, never another site."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin"


# --- signing in and out ----------------------------------------------------------------


def _login_form(
    request: Request, *, message: str | None = None, status: int = 200, login: str = ""
) -> HTMLResponse:
    token = new_token()
    response = page(
        request,
        "login.html",
        {
            "csrf_token": token,
            "message": message,
            "login": login,
            "next": _safe_next(request.query_params.get("next")),
        },
        status,
    )
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, token, 3600, path="/admin/login")
    return response


@public.get("/login")
async def login_form(request: Request) -> Response:
    if await signed_in(request, touch=False) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
    return _login_form(request)


_FAILED = "Sign-in failed: that login and password do not match an active account."


@public.post("/login")
async def login(request: Request) -> Response:
    settings = _settings(request)
    form = await form_fields(request)
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get(CSRF_FIELD)):
        log.info("admin_login_refused", reason="csrf")
        return _login_form(
            request,
            message="This sign-in form has expired or did not come from this site. Try again.",
            status=403,
        )
    login_name = form.get("login", "").strip().lower()[:64]
    password = form.get("password", "")
    client = client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        settings.public_trusted_proxies,
    )
    limiter: RateLimiter = request.app.state.login_limiter
    window = settings.admin_login_window_s
    # Counted before the password is checked, so a throttled guess costs
    # no argon2 work; the answer never says which count ran out.
    by_client = await limiter.hit(
        f"client:{client}", settings.admin_login_attempts_per_client, window
    )
    by_login = await limiter.hit(
        f"login:{login_name}", settings.admin_login_attempts_per_login, window
    )
    if not (by_client.allowed and by_login.allowed):
        wait = max(by_client.retry_after_s if not by_client.allowed else 0,
                   by_login.retry_after_s if not by_login.allowed else 0)  # fmt: skip
        log.info("admin_login_throttled", client=client)
        throttled = _login_form(
            request,
            message=f"Too many sign-in attempts. Try again in {max(1, -(-wait // 60))} minute(s).",
            status=429,
            login=login_name,
        )
        throttled.headers["Retry-After"] = str(wait)
        return throttled
    account = None
    if login_name and _valid_login(login_name):
        path: WritePath = request.app.state.write_path
        state = await path.state(ACCOUNTS, login_name)
        account = await run_in_threadpool(account_that_signs_in, state, password)
    else:  # the same work as for a known login: the time tells nothing
        await run_in_threadpool(account_that_signs_in, None, password)
    if account is None:
        log.info("admin_login_refused", reason="credentials", client=client)
        return _login_form(request, message=_FAILED, status=401, login=login_name)
    sessions: SessionStore = request.app.state.sessions
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a fresh id at every sign-in: no session fixation
        await sessions.delete(old)
    session_id, _ = await sessions.create(account.login)
    log.info("admin_login", login=account.login, client=client)
    response = RedirectResponse(_safe_next(form.get("next")), 303)
    _set_cookie(response, request, SESSION_COOKIE, session_id, settings.admin_session_absolute_s)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
    return response


def _valid_login(login: str) -> bool:
    return re.fullmatch(LOGIN_PATTERN, login) is not None


@router.post("/logout")
async def logout(request: Request, browser: SignedInDep) -> Response:
    sessions: SessionStore = request.app.state.sessions
    await sessions.delete(browser.session_id)
    log.info("admin_logout", login=browser.account.login)
    response = RedirectResponse("/admin/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the live EVSE status board ----------------------------------------------------------


def _board_filter(location: str | None, party: str | None, status: str | None) -> BoardFilter:
    country_code = party_id = None
    if party:
        # "NL-ABC", "NL*ABC" or "NLABC": a party is its country and its id.
        compact = party.replace("-", "").replace("*", "").replace(" ", "").upper()
        country_code, party_id = compact[:2], compact[2:]
    return BoardFilter(
        location_id=location or None,
        country_code=country_code or None,
        party_id=party_id or None,
        status=status if status in STATUSES else None,
    )


def _rows(ops: OpsQuery, wanted: BoardFilter, cap: int) -> tuple[list[dict[str, Any]], bool]:
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while len(rows) < cap:
        found = ops.evses(
            status=wanted.status,
            country_code=wanted.country_code,
            party_id=wanted.party_id,
            location_id=wanted.location_id,
            after=after,
            limit=min(1000, cap - len(rows)),
        )
        rows += [
            {
                "evse_key": r["evse_key"],
                "country_code": r["country_code"],
                "party_id": r["party_id"],
                "location_id": r["location_id"],
                "site": r["site"]["name"] or "",
                "evse_uid": r["evse_uid"],
                "evse_id": r["evse_id"] or "",
                "status": r["status"],
                "last_updated": r["status_last_updated"],
            }
            for r in found.items
        ]
        if found.next_after is None:
            return rows, False
        after = found.next_after
    return rows, True


Text = Annotated[str | None, Query(max_length=64)]


@router.get("")
async def board(
    request: Request,
    browser: SignedInDep,
    location: Text = None,
    party: Text = None,
    status: Text = None,
) -> Response:
    settings = _settings(request)
    hub: EvseStatusHub = request.app.state.evse_hub
    wanted = _board_filter(location, party, status)
    await _feed(request).wanted()
    # The hub's position before the rows are read: the stream replays
    # every change after it, so none made meanwhile is lost.
    seq = hub.seq
    ops: OpsQuery = request.app.state.container.ops
    rows, truncated = await run_in_threadpool(_rows, ops, wanted, settings.admin_board_max_evses)
    counts = {s: 0 for s in STATUSES}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    query = {k: v for k, v in (("location", location), ("party", party), ("status", status)) if v}
    return page(
        request,
        "board.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": rows,
            "counts": counts,
            "statuses": STATUSES,
            "truncated": truncated,
            "cap": settings.admin_board_max_evses,
            "filters": {"location": location or "", "party": party or "", "status": status or ""},
            "section": "board",
            "stream_url": "/admin/board/events?" + urlencode({**query, "after": seq}),
            "count_links": {s: "/admin?" + urlencode({**query, "status": s}) for s in STATUSES},
        },
    )


def _feed(request: Request) -> OnDemandFeed:
    feed: OnDemandFeed = request.app.state.evse_feed
    return feed


@router.get("/board/events")
async def board_events(
    request: Request,
    browser: SignedInDep,
    location: Text = None,
    party: Text = None,
    status: Text = None,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """Server-sent events: each status change of a shown EVSE (``evse``),
    ``reload`` when changes were missed, ``signedout`` when the session
    ended; a comment every 15 s keeps proxies from closing the stream."""
    hub: EvseStatusHub = request.app.state.evse_hub
    sessions: SessionStore = request.app.state.sessions
    # Every status of the board's location and party: a board filtered by
    # status must also hear an EVSE leave that status (its row goes) or
    # enter it (a row comes); the page applies the status filter.
    wanted = replace(_board_filter(location, party, status), status=None)
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() else after

    async def signed_in_still() -> bool:
        return await sessions.peek(browser.session_id) is not None

    await _feed(request).wanted()
    return StreamingResponse(
        board_stream(hub, wanted, start, signed_in_still, keepalive_s=15.0),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- chargers: online or not, and when last heard from -----------------------------------


@router.get("/chargers")
async def chargers(
    request: Request,
    browser: SignedInDep,
    location: Text = None,
) -> Response:
    """Our registered charge points: online (a gateway holds its connection
    now) or offline, and when the gateway last heard from it (any OCPP
    message, heartbeats included). The registry is the MongoDB view; the
    rest is what the gateway keeps in Redis (gateway/state.py)."""
    settings = _settings(request)
    container: Container = request.app.state.container
    found = await container.charge_points.registered(location_id=location or None, limit=_CHARGERS)
    ids = [str(doc["_id"]) for doc in found]
    prefix = settings.topic_prefix
    held: list[Any] = []
    seen: list[Any] = []
    if ids:
        held = await container.redis.mget([presence_key(prefix, cp) for cp in ids])
        seen = await container.redis.mget([seen_key(prefix, cp) for cp in ids])
    now = time.time()
    rows = []
    for doc, gateway, heard in zip(found, held, seen, strict=True):
        at = float(heard) if heard is not None else None
        rows.append(
            {
                "id": doc["_id"],
                "location_id": doc.get("location_id", ""),
                "connectors": len(doc.get("connectors") or []),
                "targets": command_targets(doc),
                "online": gateway is not None,
                "gateway": gateway.decode() if isinstance(gateway, bytes) else gateway,
                "heard_at": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                if at is not None
                else None,
                "heard_ago": ago(now - at) if at is not None else None,
                "href": f"/admin/chargers/{doc['_id']}",
            }
        )
    return page(
        request,
        "chargers.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": rows,
            "online": sum(1 for r in rows if r["online"]),
            "location": location or "",
            "truncated": len(rows) >= _CHARGERS,
            "cap": _CHARGERS,
            "section": "chargers",
            "may_command": satisfies(browser.account.role, OperatorRole.OPERATOR),
            "commands": GIVEN_COMMANDS,
        },
    )


def _moment(at: float | None, now: float) -> dict[str, str] | None:
    if at is None:
        return None
    shown = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"at": shown, "ago": ago(max(0.0, now - at))}


def _epoch(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def message_row(item: dict[str, Any]) -> dict[str, str]:
    """One logged OCPP frame as the charger page shows it."""
    at = _epoch(item.get("at"))
    return {
        "at": datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3] if at else "",
        "day": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d") if at else "",
        "dir": "in" if item.get("dir") == "in" else "out",
        "type": str(item.get("type", "")),
        "action": str(item.get("action", "")),
        "summary": str(item.get("summary", "")),
    }


ChargePointId = Annotated[str, FastApiPath(pattern=CHARGE_POINT_ID_PATTERN)]


@router.get("/chargers/{charge_point_id}")
async def charger_page(
    request: Request, browser: SignedInDep, charge_point_id: ChargePointId
) -> Response:
    """One charge point: its connection, last message and last heartbeat,
    its connectors, and its newest OCPP messages both ways as the gateway
    logged them (gateway/message_log.py, docs/adr/0038)."""
    settings = _settings(request)
    container: Container = request.app.state.container
    doc = await container.charge_points.get(charge_point_id)
    if doc is None:
        return error_page(request, 404, f"No charge point {charge_point_id} is registered here.")
    cp = str(doc["_id"])
    prefix = settings.topic_prefix
    redis = container.redis
    held, heard, beat = await redis.mget(
        [presence_key(prefix, cp), seen_key(prefix, cp), heartbeat_key(prefix, cp)]
    )
    messages = await recent_messages(redis, prefix, cp, settings.ocpp_message_log_length)
    now = time.time()
    return page(
        request,
        "charger.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "cp": {
                "id": cp,
                "location_id": doc.get("location_id", ""),
                "online": held is not None,
                "gateway": held.decode() if isinstance(held, bytes) else held,
                "heard": _moment(_epoch(heard), now),
                "heartbeat": _moment(_epoch(beat), now),
            },
            "targets": command_targets(doc),
            "messages": [message_row(m) for m in messages],
            "cap": settings.ocpp_message_log_length,
            "section": "chargers",
        },
    )


# What the page offers; CANCEL_RESERVATION needs the reservation's id,
# which the reserving request names, so it is offered too.
GIVEN_COMMANDS = [
    "UNLOCK_CONNECTOR",
    "START_SESSION",
    "STOP_SESSION",
    "RESERVE_NOW",
    "CANCEL_RESERVATION",
]


def command_targets(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The connectors of a registered charge point as a command names them
    (OCPI location, EVSE uid, connector id), in OCPP connector order."""
    found = sorted(doc.get("connectors") or [], key=lambda c: int(c.get("ocpp_connector_id", 0)))
    return [
        {
            "charger": str(doc["_id"]),
            "location_id": str(doc.get("location_id", "")),
            "evse_uid": str(c["evse_uid"]),
            "connector_id": str(c["connector_id"]),
            "label": f"{doc['_id']} · OCPP connector {c.get('ocpp_connector_id')} "
            f"({c['evse_uid']} / {c['connector_id']})",
        }
        for c in found
        if c.get("evse_uid") and c.get("connector_id")
    ]


# One page of chargers; a bigger network narrows it by location.
_CHARGERS = 500


# --- sessions and CDRs --------------------------------------------------------------------

# One page of each list; older ones are in the OCPI and ops APIs.
_RECENT = 200


def _party(party: str | None) -> tuple[str | None, str | None]:
    if not party:
        return None, None
    compact = party.replace("-", "").replace("*", "").replace(" ", "").upper()
    return compact[:2] or None, compact[2:] or None


@router.get("/sessions")
async def sessions_page(
    request: Request,
    browser: SignedInDep,
    state: Annotated[str, Query(pattern="^(active|past|all)$")] = "active",
    party: Text = None,
) -> Response:
    """Charging sessions, ours and our partners', newest first: the active
    ones (PENDING, ACTIVE, RESERVATION) or the past ones."""
    container: Container = request.app.state.container
    country_code, party_id = _party(party)
    statuses = {"active": ACTIVE_STATES, "past": PAST_STATES, "all": None}[state]
    found = await container.sessions.recent(
        statuses=statuses, country_code=country_code, party_id=party_id, limit=_RECENT
    )
    return page(
        request,
        "sessions.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": [session_row(s) for s in found],
            "state": state,
            "party": party or "",
            "truncated": len(found) >= _RECENT,
            "cap": _RECENT,
            "section": "sessions",
        },
    )


@router.get("/cdrs")
async def cdrs_page(
    request: Request,
    browser: SignedInDep,
    discrepancies: Annotated[str, Query(pattern="^(only|all)$")] = "all",
) -> Response:
    """The CDRs we issued with their price breakdown and the credit action,
    then the CDRs partners sent us with our own price of each."""
    container: Container = request.app.state.container
    settings = _settings(request)
    us = Party(country_code=fold(settings.party_country_code), party_id=fold(settings.party_id))
    issued = await container.cdrs.recent_issued(limit=_RECENT)
    credits = {credit_key(us, d["cdr"]["id"]): d["cdr"]["id"] for d in issued}
    held = await container.cdrs.existing(list(credits))
    credited = {credits[k] for k in held}
    received = await container.cdrs.reconciliation(
        only_discrepancies=discrepancies == "only", newest=_RECENT
    )
    return page(
        request,
        "cdrs.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": [cdr_row(d["cdr"], credited=d["cdr"]["id"] in credited) for d in issued],
            "received": [reconciliation_row(d) for d in received],
            "discrepancies": discrepancies,
            "truncated": len(issued) >= _RECENT,
            "cap": _RECENT,
            "may_credit": satisfies(browser.account.role, OperatorRole.BILLING),
            "section": "cdrs",
        },
    )


# --- partners ------------------------------------------------------------------------------


async def _backlogs(request: Request, ids: list[str]) -> dict[str, dict[str, int | None]]:
    """Each partner's push lanes and their lag, from the consumer groups'
    report /readyz keeps (cached a few seconds, one run at a time); {} per
    partner when the log cannot say."""
    container: Container = request.app.state.container
    if container.log_status is None:
        return {pid: {} for pid in ids}
    answer = await readiness(request, container).consumers.result()
    groups: dict[str, Any] = answer.get("groups") or {}
    settings = _settings(request)
    out: dict[str, dict[str, int | None]] = {}
    for pid in ids:
        lanes: dict[str, int | None] = {}
        for module, suffix in PUSH_LANES:
            group = groups.get(settings.topic(f"ocpi-hub-push-{suffix}{pid}"))
            if group is not None:
                lanes[module] = group.get("lag")
        out[pid] = lanes
    return out


@router.get("/partners")
async def partners_page(request: Request, browser: SignedInDep) -> Response:
    """Our roaming partners: registration, roles, endpoints, how pushes to
    them and their pulls from us are going; invite, rotate, unregister."""
    container: Container = request.app.state.container
    found = [shown_partner(p) for p in await container.partners.all()]
    ids = [p["partner_id"] for p in found]
    stats_store: RedisPushStats | None = getattr(request.app.state, "partner_stats", None)
    stats = await stats_store.read(ids) if stats_store is not None and ids else {}
    backlogs = await _backlogs(request, ids)
    now = time.time()
    return page(
        request,
        "partners.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": [
                partner_row(p, stats.get(p["partner_id"], {}), backlogs[p["partner_id"]], now)
                for p in found
            ],
            "is_admin": satisfies(browser.account.role, OperatorRole.ADMIN),
            "roles": [r.value for r in Role],
            "section": "partners",
        },
    )


# --- locations and the map -------------------------------------------------------------

# One page of locations; a bigger network narrows it by party.
_LOCATIONS = 500
_HISTORY = 300
_MAP_FILES = {"leaflet.js": "text/javascript", "leaflet.css": "text/css"}


def _map_dir(settings: Settings) -> Path | None:
    """Where Leaflet is, if `make up` fetched it (deploy/local/infra.py)."""
    home = Path(settings.admin_map_assets_dir)
    return home if (home / ".complete").exists() else None


def _map_headers(settings: Settings) -> dict[str, str]:
    """The map page's policy: tiles from the configured server only."""
    tiles = settings.admin_map_tile_url
    if not tiles:
        return {}
    origin = "/".join(tiles.split("/")[:3])
    policy = HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:", f"img-src 'self' data: {origin}"
    )
    return {"Content-Security-Policy": policy}


@router.get("/map/{name}")
async def map_asset(request: Request, browser: SignedInDep, name: str) -> Response:
    """Leaflet's script and stylesheet, from the cache `make up` filled."""
    home = _map_dir(_settings(request))
    if name not in _MAP_FILES or home is None:
        return error_page(request, 404, "The map library is not installed here.")
    return FileResponse(
        home / name,
        media_type=_MAP_FILES[name],
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/locations")
async def locations_page(request: Request, browser: SignedInDep, party: Text = None) -> Response:
    """Every location (ours and our partners') on a map and in a list."""
    settings = _settings(request)
    container: Container = request.app.state.container
    country_code, party_id = _party(party)
    found = await container.locations.page(
        country_code=country_code, party_id=party_id, limit=_LOCATIONS
    )
    locations = [doc for doc in found.items if doc]
    pins = [pin for loc in locations if (pin := location_pin(loc)) is not None]
    response = page(
        request,
        "locations.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": [location_row(loc) for loc in locations],
            "pins": pins,
            "party": party or "",
            "truncated": len(locations) >= _LOCATIONS,
            "cap": _LOCATIONS,
            "map_ready": _map_dir(settings) is not None,
            "tile_url": settings.admin_map_tile_url,
            "tile_attribution": settings.admin_map_tile_attribution,
            "section": "locations",
        },
    )
    response.headers.update(_map_headers(settings))
    return response


@router.get("/locations/{country_code}/{party_id}/{location_id}")
async def location_page(
    request: Request,
    browser: SignedInDep,
    country_code: Annotated[str, FastApiPath(max_length=2)],
    party_id: Annotated[str, FastApiPath(max_length=3)],
    location_id: Annotated[str, FastApiPath(max_length=36)],
) -> Response:
    """One location: its EVSEs and connectors as held now, and each EVSE's
    status changes: as its owner stated them (the location_history view)
    and as our chargers' facts resolved them (evse_status_history)."""
    container: Container = request.app.state.container
    location = await container.locations.get(country_code, party_id, location_id)
    if location is None:
        return error_page(
            request, 404, f"No location {country_code}-{party_id} {location_id} is known here."
        )
    history = container.location_history
    events = (
        await history.recent(country_code, party_id, location_id, limit=_HISTORY)
        if history is not None
        else []
    )
    resolved = container.evse_status_history
    derived = (
        await resolved.recent(country_code, party_id, location_id, limit=_HISTORY)
        if resolved is not None
        else []
    )
    settings = _settings(request)
    us = (fold(settings.party_country_code), fold(settings.party_id))
    return page(
        request,
        "location.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "location": location_row(location),
            "evses": [
                {
                    "uid": e["uid"],
                    "evse_id": e.get("evse_id") or "",
                    "status": e.get("status", "UNKNOWN"),
                    "updated": when(e.get("last_updated")),
                    "connectors": [
                        {
                            "id": c["id"],
                            "standard": c.get("standard", ""),
                            "format": c.get("format", ""),
                            "power": c.get("power_type", ""),
                            "max_power_kw": round(int(c.get("max_electric_power") or 0) / 1000, 1)
                            if c.get("max_electric_power")
                            else None,
                            "tariffs": c.get("tariff_ids") or [],
                        }
                        for c in e.get("connectors") or []
                    ],
                }
                for e in location.get("evses") or []
            ],
            "history": status_history(events, derived, us=us, limit=_HISTORY),
            "history_cap": _HISTORY,
            "section": "locations",
        },
    )


# --- tokens and the audit trail ---------------------------------------------------------

_TOKENS = 300
_AUDIT = 100
AuditText = Annotated[str | None, Query(max_length=120, pattern=KEY_TEXT)]


@router.get("/tokens")
async def tokens_page(request: Request, browser: SignedInDep, party: Text = None) -> Response:
    """Tokens, newest change first: ours (we are their eMSP) with the policy
    our real-time authorization applies, and partners' (our whitelist)."""
    settings = _settings(request)
    container: Container = request.app.state.container
    country_code, party_id = _party(party)
    found = await container.tokens.recent(
        country_code=country_code, party_id=party_id, limit=_TOKENS
    )
    us = (fold(settings.party_country_code), fold(settings.party_id))
    rows = []
    for state in found:
        token = state.token or {}
        ours = (fold(token.get("country_code", "")), fold(token.get("party_id", ""))) == us
        policy = state.policy.model_dump(mode="json") if state.policy is not None else None
        rows.append(token_row(token, policy, ours=ours))
    return page(
        request,
        "tokens.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": rows,
            "party": party or "",
            "truncated": len(found) >= _TOKENS,
            "cap": _TOKENS,
            "may_set": satisfies(browser.account.role, OperatorRole.OPERATOR),
            "states": ["ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT"],
            "section": "tokens",
        },
    )


@router.get("/audit")
async def audit_page(
    request: Request,
    browser: SignedInDep,
    actor: AuditText = None,
    topic: AuditText = None,
    event_type: AuditText = None,
    after: Annotated[str | None, Query(max_length=200, pattern=KEY_TEXT)] = None,
) -> Response:
    """Who did what (GET /ops/audit's entries), newest first, filterable."""
    container: Container = request.app.state.container
    found = await container.audit.page(
        actor=actor or None,
        topic=topic or None,
        event_type=event_type or None,
        after=after or None,
        limit=_AUDIT,
    )
    query = {k: v for k, v in (("actor", actor), ("topic", topic), ("event_type", event_type)) if v}
    return page(
        request,
        "audit.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "rows": [
                {**item, "at": when(str(item["recorded_at"]).replace("+00:00", "Z"))}
                for item in found.items
            ],
            "filters": {"actor": actor or "", "topic": topic or "", "event_type": event_type or ""},
            "next": "/admin/audit?" + urlencode({**query, "after": found.next_after})
            if found.next_after
            else None,
            "section": "audit",
        },
    )


# --- charts -------------------------------------------------------------------------------


@router.get("/charts")
async def charts_page(request: Request, browser: SignedInDep) -> Response:
    """What the platform did over the last day, sampled once per interval
    (api/admin/charts.py), and push failures per partner now."""
    container: Container = request.app.state.container
    store: ChartSamples | None = getattr(request.app.state, "chart_samples", None)
    samples = await store.recent() if store is not None else []
    partners = await container.partners.all()
    stats_store: RedisPushStats | None = getattr(request.app.state, "partner_stats", None)
    stats = (
        await stats_store.read([p.partner_id for p in partners])
        if stats_store is not None and partners
        else {}
    )
    failures = [
        (pid, float(sum(m.get("failures", 0) for name, m in per.items() if "pull-" not in name)))
        for pid, per in stats.items()
        if per
    ]
    settings = _settings(request)
    return page(
        request,
        "charts.html",
        {
            "account": browser.account,
            "csrf_token": browser.session.csrf_token,
            "samples": len(samples),
            "interval": settings.admin_chart_sample_s,
            "statuses": line_chart(status_series(samples), "EVSEs per status"),
            "accepted": line_chart(accepted_per_minute(samples), "Events accepted per minute"),
            "lag": line_chart(lag_series(samples), "Projection lag per topic"),
            "failures": bar_chart(failures, "Failed push attempts per partner"),
            "section": "charts",
        },
    )


def install_admin(app: FastAPI) -> None:
    """The dashboard's routes, its assets and its refusal pages."""
    app.include_router(public)
    app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=HERE / "static"), name="admin-static")

    @app.exception_handler(AdminRefusedError)
    async def refused(request: Request, exc: AdminRefusedError) -> Response:
        if exc.http_status == 401:
            if request.method == "GET" and request.url.path != "/admin/board/events":
                target = urlencode(
                    {
                        "next": request.url.path
                        + (f"?{request.url.query}" if request.url.query else "")
                    }
                )
                return RedirectResponse(f"/admin/login?{target}", 303)
            return error_page(request, 401, exc.message)
        return error_page(request, exc.http_status, exc.message)
