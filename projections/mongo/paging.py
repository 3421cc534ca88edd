"""Keyset pages of a view collection: what every OCPI Sender list reads.

A view document that a Sender list serves keeps the OCPI object under one
field (``location``, ``tariff``, ``token``, ``session`` …) and ``_ts``: the
object's ``last_updated`` as fixed-width sortable text, null while nothing is
served. Each view indexes ``(<its match fields>, _ts, _id)``.

Pages run oldest ``last_updated`` first, then by ``_id`` (transport_and_format,
pagination: ``date_from`` inclusive, ``date_to`` exclusive). ``after``, the
previous page's last ``(_ts, _id)``, makes a page index range queries that
start where the last page ended, so page 1,000 costs what page 1 costs;
``skip`` serves a plain ``offset`` from a client that did not follow our
``Link``. Each query is an equality on the match fields, a range of ``_ts``
and a sort on ``(_ts, _id)``: MongoDB reads it from the view's index in order
and stops at the limit (no ``SORT`` stage; docs/adr/0025). Pages are read
on the API's async client (docs/adr/0026).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from schemas.ocpi.common import sort_stamp

Doc = dict[str, Any]


@dataclass(frozen=True)
class Page:
    items: list[Doc]
    total: int
    # The key of the last item, for the next page's keyset query.
    last: tuple[str, str] | None


async def keyset_page(
    coll: AsyncCollection[Doc],
    served: str,
    match: Doc,
    *,
    date_from: datetime | None,
    date_to: datetime | None,
    after: tuple[str, str] | None,
    skip: int,
    limit: int,
    maintained_total: Callable[[], Awaitable[int]] | None = None,
) -> Page:
    """The page of served objects (``doc[served]``) among the documents that
    ``match`` selects, within the ``last_updated`` window.

    The total: without a window, ``maintained_total`` (the count the
    projection keeps, projections/mongo/counts.py) when the view has one;
    with a window, the matches counted in the view's keyset index (the
    window is a range of ``_ts`` after the match's equality fields, so
    MongoDB counts index keys and fetches no document)."""
    window: Doc = {}
    if date_from is not None:
        window["$gte"] = sort_stamp(date_from)
    if date_to is not None:
        window["$lt"] = sort_stamp(date_to)
    # Every served document has a string ``_ts``: ``$gte ""`` selects them
    # all as an index range (MongoDB's type bracketing leaves null out),
    # where ``$ne: null`` is not a range on every server (SecantusDB scans).
    filt: Doc = {**match, "_ts": window or {"$gte": ""}}
    if not window and maintained_total is not None:
        total = await maintained_total()
    else:
        total = await coll.count_documents(filt)
    if after is None and skip:
        # A plain offset (a client that did not follow our Link): the index
        # is read in order from the start of the range.
        docs = await _find(coll, served, filt, skip=skip, limit=limit)
    elif after is None:
        docs = await _in_windows(
            coll, served, match, lo=window.get("$gte", ""), inclusive=True, hi=window.get("$lt"),
            limit=limit,
        )  # fmt: skip
    else:
        # The rest of the last page's timestamp, then later ones (an $or of
        # the two is not a single index range on every server we run on).
        ts, key = after
        docs = await _find(
            coll, served, {**filt, "_ts": ts, "_id": {"$gt": key}}, skip=0, limit=limit
        )
        if len(docs) < limit:
            docs += await _in_windows(
                coll, served, match, lo=ts, inclusive=False, hi=window.get("$lt"),
                limit=limit - len(docs),
            )  # fmt: skip
    last = (docs[-1]["_ts"], docs[-1]["_id"]) if docs else None
    return Page(items=[d[served] for d in docs], total=total, last=last)


# Windows of ``_ts`` a page is read in: the first one second wide, each next
# one four times wider; past a year wide, the rest of the range at once.
_FIRST_WIDTH = timedelta(seconds=1)
_GROWTH = 4
_WIDEST = timedelta(days=366)
_EPOCH = sort_stamp(datetime(1970, 1, 1, tzinfo=UTC))


async def _in_windows(
    coll: AsyncCollection[Doc],
    served: str,
    match: Doc,
    *,
    lo: str,
    inclusive: bool,
    hi: str | None,
    limit: int,
) -> list[Doc]:
    """Up to ``limit`` documents with ``lo <(=) _ts < hi`` (``hi`` None: no
    end), in ``(_ts, _id)`` order, read as consecutive ``_ts`` windows until
    the page is full or the range is done.

    MongoDB reads each window from the index and stops at the limit, so this
    costs it a few more round trips than one open range. It is what makes a
    page cost a page on a server that fetches every document of a range
    before it applies the limit (SecantusDB, see docs/adr/0025): a window
    holds about as many documents as the page needs, where an open range
    holds the rest of the list."""
    docs: list[Doc] = []
    width = _FIRST_WIDTH
    while len(docs) < limit:
        end: str | None
        if lo < _EPOCH:
            end = _EPOCH  # whatever lies before 1970 (nothing, as a rule), at once
        elif width > _WIDEST:
            end = None
        else:
            end = _later(lo, width)
            width *= _GROWTH
        if hi is not None and (end is None or end >= hi):
            end = hi
        bounds: Doc = {"$gte" if inclusive else "$gt": lo}
        if end is not None:
            bounds["$lt"] = end
        docs += await _find(coll, served, {**match, "_ts": bounds}, skip=0, limit=limit - len(docs))
        if end is None or end == hi:
            break
        lo, inclusive = end, True
    return docs


def _later(stamp: str, width: timedelta) -> str | None:
    """The ``_ts`` ``width`` after ``stamp``; None past the calendar's end."""
    try:
        return sort_stamp(datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC) + width)
    except (OverflowError, ValueError):
        return None


_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


async def _find(
    coll: AsyncCollection[Doc], served: str, filt: Doc, *, skip: int, limit: int
) -> list[Doc]:
    cursor = (
        coll.find(filt, {served: 1, "_ts": 1})
        .sort([("_ts", ASCENDING), ("_id", ASCENDING)])
        .skip(skip)
        .limit(limit)
    )
    return await cursor.to_list()
