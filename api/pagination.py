"""Pagination of Sender GET lists (transport_and_format, "Pagination").

Query parameters ``date_from`` (inclusive), ``date_to`` (exclusive),
``offset`` and ``limit``; oldest ``last_updated`` first. Answers carry
``X-Total-Count`` (objects matching the filters), ``X-Limit`` (our maximum
page size) and, unless it is the last page, ``Link: <url>; rel="next"`` with
the filters kept.

The ``next`` URL also carries ``cursor``, the sort key of the page's last
object, so the following page is a keyset query: page 1,000 costs what page
1 costs, and an object updated while a client crawls is not skipped or seen
twice on the pages it has not read yet. A client that computes ``offset``
itself (without ``cursor``) still gets a correct, if slower, page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from api.deps import ContainerDep
from api.errors import OcpiError, ocpi_version_and_module
from projections.mongo.paging import Page
from schemas.ocpi.common import DateTime, format_ocpi_datetime
from schemas.ocpi.limits import INT_FIELD_MAX
from schemas.ocpi.status_codes import OcpiStatus


@dataclass(frozen=True)
class PageRequest:
    date_from: datetime | None
    date_to: datetime | None
    offset: int
    limit: int
    after: tuple[str, str] | None


def encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[str, str]:
    """The sort key a ``cursor`` carries; one we did not issue is 2001 at
    HTTP 200: the list exists (docs/adr/0039 §2)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        ts, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "cursor is not one we issued") from exc
    if not isinstance(ts, str) or not isinstance(key, str):
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "cursor is not one we issued")
    return ts, key


async def page_request(
    c: ContainerDep,
    date_from: Annotated[DateTime | None, Query()] = None,
    date_to: Annotated[DateTime | None, Query()] = None,
    # An offset beyond 32 bits addresses no page we could hold, and one
    # beyond 64 bits cannot even be sent to MongoDB (docs/adr/0027).
    offset: Annotated[int, Query(ge=0, le=INT_FIELD_MAX)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> PageRequest:
    # A limit above ours is not an error: the spec lets the server return
    # fewer and say its maximum in X-Limit.
    return PageRequest(
        date_from=date_from,
        date_to=date_to,
        offset=offset,
        limit=min(limit or c.settings.page_limit, c.settings.page_limit),
        after=decode_cursor(cursor) if cursor else None,
    )


PageRequestDep = Annotated[PageRequest, Depends(page_request)]


def paginate(
    request: Request,
    response: Response,
    c: ContainerDep,
    params: PageRequest,
    *,
    returned: int,
    total: int,
    last: tuple[str, str] | None,
) -> None:
    """Set the pagination headers of one page, and note that the partner
    pulled this module (the dashboard's partners page)."""
    stamps = getattr(request.app.state, "pull_stamps", None)
    partner_id = getattr(request.state, "partner_id", None)
    if stamps is not None and partner_id is not None:
        named = ocpi_version_and_module(request.url.path)
        stamps.stamp_soon(partner_id, named[1] if named and named[1] else "?")
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Limit"] = str(c.settings.page_limit)
    next_offset = params.offset + returned
    if returned == 0 or last is None or next_offset >= total:
        return
    query: dict[str, Any] = {}
    if params.date_from is not None:
        query["date_from"] = format_ocpi_datetime(params.date_from)
    if params.date_to is not None:
        query["date_to"] = format_ocpi_datetime(params.date_to)
    query.update(offset=next_offset, limit=params.limit, cursor=encode_cursor(last))
    url = f"{c.settings.base_url}{request.url.path}?{urlencode(query)}"
    response.headers["Link"] = f'<{url}>; rel="next"'


async def our_page(
    request: Request,
    response: Response,
    c: ContainerDep,
    params: PageRequest,
    read: Callable[..., Awaitable[Page]],
    *,
    of_our_party: bool = True,
    **filters: Any,
) -> list[dict[str, Any]]:
    """One page of a Sender list (``read``: the view's ``page``, with the
    module's own ``filters``), its headers set: of our own objects (our
    party's), or, with ``of_our_party=False``, of a list whose objects are
    not ours (what a hub reported to us)."""
    if of_our_party:
        s = c.settings
        filters.update(country_code=s.party_country_code, party_id=s.party_id)
    page = await read(
        date_from=params.date_from,
        date_to=params.date_to,
        after=params.after,
        skip=params.offset,
        limit=params.limit,
        **filters,
    )
    paginate(
        request, response, c, params, returned=len(page.items), total=page.total, last=page.last
    )
    items: list[dict[str, Any]] = page.items
    return items
