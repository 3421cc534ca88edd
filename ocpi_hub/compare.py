"""Compare two sets of views entry by entry (live against a replay)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ocpi_hub.bootstrap import Views
from projections.mongo.locations import COLLECTION
from projections.mysql.models import chargers


def _mongo(views: Views) -> dict[Any, Any]:
    return {d["_id"]: d for d in views.mongo[COLLECTION].find()}


def _mysql(views: Views) -> dict[Any, Any]:
    with views.mysql.connect() as conn:
        return {r.evse_key: dict(r._mapping) for r in conn.execute(select(chargers))}


def compare_views(left: Views, right: Views) -> list[str]:
    """Keys that are missing on one side or differ; empty when equal."""
    differences = []
    for name, read in (("mongo.locations", _mongo), ("mysql.chargers", _mysql)):
        a, b = read(left), read(right)
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                differences.append(f"{name}:{key}")
    return differences
