"""Compare two sets of views entry by entry (live against a replay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ocpi_hub.bootstrap import Views
from projections.mongo import locations, partners
from projections.mysql.models import chargers


def _mongo(collection: str) -> Callable[[Views], dict[Any, Any]]:
    def read(views: Views) -> dict[Any, Any]:
        return {d["_id"]: d for d in views.mongo[collection].find()}

    return read


def _mysql(views: Views) -> dict[Any, Any]:
    with views.mysql.connect() as conn:
        return {r.evse_key: dict(r._mapping) for r in conn.execute(select(chargers))}


def compare_views(left: Views, right: Views) -> list[str]:
    """Keys that are missing on one side or differ; empty when equal."""
    differences = []
    readers = (
        ("mongo.locations", _mongo(locations.COLLECTION)),
        ("mongo.partners", _mongo(partners.COLLECTION)),
        ("mysql.chargers", _mysql),
    )
    for name, read in readers:
        a, b = read(left), read(right)
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                differences.append(f"{name}:{key}")
    return differences
