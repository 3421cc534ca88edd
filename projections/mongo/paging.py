"""Keyset pages of a view collection: what every OCPI Sender list reads.

A view document that a Sender list serves keeps the OCPI object under one
field (``location``, ``tariff``, ``token``, ``session`` …) and ``_ts``: the
object's ``last_updated`` as fixed-width sortable text, null while nothing is
served. Each view indexes ``(<its match fields>, _ts, _id)``.

Pages run oldest ``last_updated`` first, then by ``_id`` (transport_and_format,
pagination: ``date_from`` inclusive, ``date_to`` exclusive). ``after``, the
previous page's last ``(_ts, _id)``, makes a page two index range queries, so
page 1,000 costs what page 1 costs; ``skip`` serves a plain ``offset`` from a
client that did not follow our ``Link``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection

from projections.location_state import sort_stamp

Doc = dict[str, Any]


@dataclass(frozen=True)
class Page:
    items: list[Doc]
    total: int
    # The key of the last item, for the next page's keyset query.
    last: tuple[str, str] | None


def keyset_page(
    coll: Collection[Doc],
    served: str,
    match: Doc,
    *,
    date_from: datetime | None,
    date_to: datetime | None,
    after: tuple[str, str] | None,
    skip: int,
    limit: int,
    maintained_total: Callable[[], int] | None = None,
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
    filt: Doc = {**match, "_ts": window or {"$ne": None}}
    if not window and maintained_total is not None:
        total = maintained_total()
    else:
        total = coll.count_documents(filt)
    if after is None:
        docs = _find(coll, served, filt, skip=skip, limit=limit)
    else:
        # The rest of the last page's timestamp, then later ones: two plain
        # range queries, each served by the index (an $or of the two is not,
        # on every server we run on).
        ts, key = after
        docs = _find(coll, served, {**filt, "_ts": ts, "_id": {"$gt": key}}, skip=0, limit=limit)
        if len(docs) < limit:
            later = {**filt, "_ts": {**window, "$gt": ts}}
            docs += _find(coll, served, later, skip=0, limit=limit - len(docs))
    last = (docs[-1]["_ts"], docs[-1]["_id"]) if docs else None
    return Page(items=[d[served] for d in docs], total=total, last=last)


def _find(coll: Collection[Doc], served: str, filt: Doc, *, skip: int, limit: int) -> list[Doc]:
    cursor = (
        coll.find(filt, {served: 1, "_ts": 1})
        .sort([("_ts", ASCENDING), ("_id", ASCENDING)])
        .skip(skip)
        .limit(limit)
    )
    return list(cursor)
