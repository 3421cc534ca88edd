"""History views kept in chunks: per batch, one document per group
(docs/adr/0049).

A history view keeps one entry per event (a location's PUTs and PATCHes, a
tariff's versions, an EVSE's resolved statuses). The document store's cost
is per document far more than per byte (ADR 0049 has the figures), so a
batch's entries of one group (a location, a tariff) are written as one
document, a chunk:

    {_id: "<group>|<topic@partition>|<first offset>", key: "<group>",
     partition: <int>, first: <offset>, last: <offset>, n: <entries>,
     since: <earliest recorded_at>, entries: [{offset: <int>, ...}, ...]}

A chunk holds every entry of its group in its batch's range of offsets,
ordered by offset. Under a steady trickle a chunk holds one entry; in a
burst or a replay, many.

Re-delivery: a chunk is inserted; one already there under its id (the same
group's first offset after the same committed position) is replaced only by
a chunk that reaches further, so a chunk never shrinks. A re-delivery whose
batches end elsewhere than the first delivery's can leave two chunks that
hold the same entries; readers keep an offset once (``entries``), so what
they see is the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from projections.mongo.folding import Doc
from projections.position import Record

_DUPLICATE_KEY = 11000


def prepare(
    coll: Collection[Doc], group_of: Callable[[Doc], str], entry_of: Callable[[Doc], Doc]
) -> None:
    """The one index the readers use: a group's chunks, newest first. A view
    still laid out an entry per document (before docs/adr/0049) has that
    layout's indexes: it is upgraded (``upgrade``), then they are dropped (a
    chunk has none of their fields, and each would still be written). A view
    with no other index is not scanned, so a start costs no pass over it."""
    wanted = coll.create_index([("key", ASCENDING), ("last", DESCENDING)])
    stale = [i["name"] for i in coll.list_indexes() if i["name"] not in ("_id_", wanted)]
    if stale:
        upgrade(coll, group_of, entry_of)
        for name in stale:
            coll.drop_index(name)


def upgrade(
    coll: Collection[Doc], group_of: Callable[[Doc], str], entry_of: Callable[[Doc], Doc]
) -> int:
    """Turn the entries a view held one per document (before docs/adr/0049)
    into chunks of one entry each, a page at a time: each chunk is written,
    then the old document deleted, so an upgrade cut short is taken up
    again at the next start (the old indexes are dropped only after it).
    Returns the entries moved."""
    moved = 0
    # One scan: a page's writes are chunks, which the scan's filter skips
    # should it meet them again.
    found = coll.find({"entries": {"$exists": False}}, batch_size=1000)
    while page := list(itertools.islice(found, 1000)):
        fresh = []
        for old in page:
            position, offset = old["_id"].rsplit("|", 2)[1:]
            group = group_of(old)
            fresh.append(
                {
                    "_id": f"{group}|{position}|{offset}",
                    "key": group,
                    "partition": old["partition"],
                    "first": old["offset"],
                    "last": old["offset"],
                    "n": 1,
                    "since": old["recorded_at"],
                    "entries": [{"offset": old["offset"], **entry_of(old)}],
                }
            )
        replaced = {d["_id"] for d in fresh} & {d["_id"] for d in page}
        write(coll, [d for d in fresh if d["_id"] not in replaced])
        in_place = [ReplaceOne({"_id": d["_id"]}, d) for d in fresh if d["_id"] in replaced]
        if in_place:
            coll.bulk_write(in_place, ordered=False)
        coll.delete_many({"_id": {"$in": [d["_id"] for d in page if d["_id"] not in replaced]}})
        moved += len(page)
    return moved


def chunks(entries: Iterable[tuple[str, Record[Any], Doc]]) -> list[Doc]:
    """The chunks of one batch: ``entries`` are (group, record, entry) in
    log order; each entry gets its record's offset."""
    by_group: dict[tuple[str, str], Doc] = {}
    for group, record, entry in entries:
        chunk = by_group.get((group, record.position_field))
        entry = {"offset": record.offset, **entry}
        if chunk is None:
            by_group[group, record.position_field] = {
                "_id": f"{group}|{record.position_field}|{record.offset}",
                "key": group,
                "partition": record.partition,
                "first": record.offset,
                "last": record.offset,
                "n": 1,
                "since": entry["recorded_at"],
                "entries": [entry],
            }
            continue
        chunk["entries"].append(entry)
        chunk["last"] = max(chunk["last"], record.offset)
        chunk["n"] += 1
        chunk["since"] = min(chunk["since"], entry["recorded_at"])
    return list(by_group.values())


def write(coll: Collection[Doc], docs: Sequence[Doc]) -> int:
    """Insert the chunks; a chunk whose id is taken (a re-delivery) replaces
    the one there only if it reaches further. Returns the entries written."""
    if not docs:
        return 0
    entries_of: list[int] = [d["n"] for d in docs]
    try:
        coll.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != _DUPLICATE_KEY for e in errors):
            raise
        written = sum(entries_of)
        for error in errors:
            doc = docs[error["index"]]
            replaced = coll.replace_one({"_id": doc["_id"], "last": {"$lt": doc["last"]}}, doc)
            if not replaced.modified_count:
                written -= entries_of[error["index"]]
        return written
    return sum(entries_of)


def entries(found: Iterable[Doc]) -> list[Doc]:
    """The entries of some chunks of one group, each offset once, in log
    order; each entry gets its chunk's ``partition``."""
    seen: dict[tuple[int, int], Doc] = {}
    for chunk in found:
        for entry in chunk["entries"]:
            position = (chunk["partition"], entry["offset"])
            seen.setdefault(position, entry | {"partition": chunk["partition"]})
    return [seen[position] for position in sorted(seen)]


async def newest(coll: AsyncCollection[Doc], key: str, limit: int) -> list[Doc]:
    """The newest ``limit`` entries of one group, in log order. Chunks are
    read newest first until they hold ``limit`` entries: an older chunk
    holds only older entries, or entries a newer one holds too."""
    found: list[Doc] = []
    offsets: set[int] = set()
    async for chunk in coll.find({"key": key}).sort("last", DESCENDING):
        found.append(chunk)
        offsets.update(entry["offset"] for entry in chunk["entries"])
        if len(offsets) >= limit:
            break
    return entries(found)[-limit:] if limit > 0 else []


def utc(at: datetime) -> datetime:
    """A stored instant as an aware one (a client without tz_aware hands
    naive UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
