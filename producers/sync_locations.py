"""Pull sync: crawl a partner CPO's Locations Sender list and record every
object as the same event a push would have produced (``LocationObjectPut``
at the Location level).

The crawl follows the ``Link: <...>; rel="next"`` header until there is none
(transport_and_format, "Pagination"), so it works with any conforming
Sender whatever its page size or cursor scheme. A copy older than what we
hold is recorded and then ignored by the views (docs/adr/0004), so a sync
running beside pushes cannot take a location back in time. Objects outside
the partner's own parties, or that are not valid Locations, are counted and
skipped: the rest of the crawl goes on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from producers.locations import SLICE, PutObject, decide
from producers.partner_client import PartnerCallError, authorization
from producers.partners import PartnerState
from producers.write_path import Origin, RefusedError, WritePath
from schemas.events import Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.common import fold, format_ocpi_datetime

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int | None


@dataclass
class SyncReport:
    pages: int = 0
    recorded: int = 0
    skipped: list[str] = field(default_factory=list)


def locations_sender_url(partner: PartnerState) -> str:
    for endpoint in partner.endpoints:
        if endpoint.identifier == "locations" and endpoint.role == "SENDER":
            return str(endpoint.url)
    raise LookupError(f"partner {partner.partner_id} offers no Locations Sender interface")


async def crawl(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    since: datetime | None = None,
) -> AsyncIterator[Page]:
    """Yield the pages of a Sender list, following ``Link`` headers."""
    params: dict[str, str] | None = {"date_from": format_ocpi_datetime(since)} if since else None
    next_url: str | None = url
    while next_url is not None:
        request_headers = {**headers, "X-Request-ID": str(uuid.uuid4())}
        try:
            resp = await client.get(next_url, headers=request_headers, params=params)
        except httpx.HTTPError as exc:
            raise PartnerCallError(f"GET {next_url}: {type(exc).__name__}") from exc
        params = None  # the next link carries the filters itself
        try:
            body = resp.json()
        except ValueError as exc:
            raise PartnerCallError(f"GET {next_url}: HTTP {resp.status_code}, not JSON") from exc
        if resp.status_code != 200 or not isinstance(body, dict) or body.get("status_code") != 1000:
            code = body.get("status_code") if isinstance(body, dict) else None
            raise PartnerCallError(f"GET {next_url}: HTTP {resp.status_code}, OCPI {code}")
        items = body.get("data") or []
        if not isinstance(items, list):
            raise PartnerCallError(f"GET {next_url}: data is not a list")
        total = resp.headers.get("X-Total-Count")
        yield Page(items=items, total=int(total) if total and total.isdigit() else None)
        link = resp.links.get("next")
        next_url = link.get("url") if link else None


def commands_of_page(
    partner: PartnerState, items: Sequence[Any], correlation_id: str
) -> tuple[list[PutObject], list[str]]:
    """A PUT of each Location of the page the partner may send us, and a
    reason for each object skipped (not one of its parties)."""
    commands: list[PutObject] = []
    skipped: list[str] = []
    for item in items:
        ids = item if isinstance(item, dict) else {}
        cc, pid, loc = (str(ids.get(k)) for k in ("country_code", "party_id", "id"))
        if not partner.owns(cc, pid):
            skipped.append(f"{cc}/{pid}/{loc}: not a party of {partner.partner_id}")
            continue
        try:
            ref = LocationObjectRef(country_code=cc, party_id=pid, location_id=loc)
        except ValidationError:
            skipped.append(f"{cc}/{pid}/{loc}: not a location reference")
            continue
        origin = Origin(Party(country_code=fold(cc), party_id=fold(pid)), correlation_id)
        commands.append(PutObject(ref, item, origin))
    return commands, skipped


async def _record(
    write_path: WritePath, command: PutObject, now: datetime, limit: asyncio.Semaphore
) -> str | None:
    """Record one PUT; the reason it was skipped, if it was."""
    ref = command.ref
    named = f"{ref.country_code}/{ref.party_id}/{ref.location_id}"
    async with limit:
        try:
            await write_path.write(
                SLICE, ref.location_key, lambda state: decide(state, command, now)
            )
        except ValidationError as exc:
            return f"{named}: {exc.error_count()} invalid field(s)"
        except RefusedError as exc:
            return f"{named}: {exc.message}"
    return None


async def sync_locations(
    partner: PartnerState,
    token: str,
    write_path: WritePath,
    *,
    us: Party,
    clock: Callable[[], datetime],
    since: datetime | None = None,
    timeout_s: float = 30.0,
    on_page: Callable[[int, int | None], None] = lambda done, total: None,
    in_flight: int = 16,
) -> SyncReport:
    """Crawl the partner's locations into our log through the write path
    (``in_flight`` objects at a time; every one acknowledged before the
    next page); ``on_page(objects seen, total)`` after each page. The token
    is only ever put in the header."""
    url = locations_sender_url(partner)
    to = next((r for r in partner.roles if r.role == "CPO"), None) or partner.roles[0]
    headers = {
        "Authorization": authorization(token),
        "X-Correlation-ID": str(uuid.uuid4()),
        "OCPI-from-country-code": us.country_code,
        "OCPI-from-party-id": us.party_id,
        "OCPI-to-country-code": to.country_code,
        "OCPI-to-party-id": to.party_id,
    }
    report = SyncReport()
    limit = asyncio.Semaphore(in_flight)
    seen = 0
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        async for page in crawl(client, url, headers, since=since):
            commands, skipped = commands_of_page(partner, page.items, headers["X-Correlation-ID"])
            now = clock()
            outcomes = await asyncio.gather(
                *(_record(write_path, command, now, limit) for command in commands)
            )
            refused = [reason for reason in outcomes if reason is not None]
            report.pages += 1
            report.recorded += len(commands) - len(refused)
            report.skipped += skipped + refused
            seen += len(page.items)
            on_page(seen, page.total)
    log.info(
        "locations_synced",
        partner_id=partner.partner_id,
        pages=report.pages,
        recorded=report.recorded,
        skipped=len(report.skipped),
    )
    return report
