"""Compare two sets of views entry by entry (live against a replay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, select

from ocpi_hub.bootstrap import Views
from projections.mongo import (
    afir,
    audit,
    charge_points,
    chunks,
    hub_client_info,
    locations,
    operators,
    partners,
    payments,
    received_commands,
    sent_charging_profiles,
    sent_commands,
    tokens,
)
from projections.mongo import sessions as mongo_sessions
from projections.mongo import tariffs as tariff_view
from projections.mongo.cdrs import COLLECTION as CDR_COLLECTION
from projections.mongo.counts import COLLECTION as COUNTS
from projections.mongo.dead_letters import COLLECTION as DEAD_LETTERS
from projections.mongo.evse_status_history import COLLECTION as EVSE_STATUS_HISTORY
from projections.mongo.evse_status_history import KEPT_PER_LOCATION
from projections.mongo.folding import VERSION
from projections.mongo.history import LOCATION_HISTORY, TARIFF_HISTORY
from projections.mysql.billing import charges as billing_charges
from projections.mysql.billing import corporations as billing_corporations
from projections.mysql.billing import credit_note_lines as billing_credit_note_lines
from projections.mysql.billing import credit_notes as billing_credit_notes
from projections.mysql.billing import invoice_lines as billing_invoice_lines
from projections.mysql.billing import invoices as billing_invoices
from projections.mysql.billing import members as billing_members
from projections.mysql.cdrs import cdrs as cdr_rows
from projections.mysql.models import buildings, connectors, evses, location_states, spaces
from projections.mysql.sessions import sessions as session_rows


def _mongo(collection: str) -> Callable[[Views], dict[Any, Any]]:
    def read(views: Views) -> dict[Any, Any]:
        # The write counter depends on how events were batched, not on them.
        return {d["_id"]: d for d in views.mongo[collection].find({}, {VERSION: 0})}

    return read


def _history(collection: str, kept: int | None = None) -> Callable[[Views], dict[Any, Any]]:
    """A history view's entries by group and position; with ``kept``, the
    newest ``kept`` of each group. Chunks are cut where batches ended and
    older ones pruned when restarts allowed (docs/adr/0049), so only the
    entries compare."""

    def read(views: Views) -> dict[Any, Any]:
        by_group: dict[str, list[Any]] = {}
        for chunk in views.mongo[collection].find({}):
            by_group.setdefault(chunk["key"], []).append(chunk)
        out: dict[Any, Any] = {}
        for group, found in by_group.items():
            entries = chunks.entries(found)
            for entry in entries if kept is None else entries[-kept:]:
                out[f"{group}|{entry['partition']}|{entry['offset']}"] = entry
        return out

    return read


def _counts(views: Views) -> dict[Any, Any]:
    # A counter's offset is where a batch ended (batching, not events); the
    # count itself must be the same.
    return {d["_id"]: d["n"] for d in views.mongo[COUNTS].find({}, {"n": 1})}


def _mysql(table: Table) -> Callable[[Views], dict[Any, Any]]:
    [key] = table.primary_key.columns

    def read(views: Views) -> dict[Any, Any]:
        with views.mysql.connect() as conn:
            return {r._mapping[key]: dict(r._mapping) for r in conn.execute(select(table))}

    return read


def _mysql_rows(table: Table) -> Callable[[Views], dict[Any, Any]]:
    """A table with a composite primary key, entries keyed by its tuple."""
    keys = list(table.primary_key.columns)

    def read(views: Views) -> dict[Any, Any]:
        with views.mysql.connect() as conn:
            return {
                "/".join(str(r._mapping[k]) for k in keys): dict(r._mapping)
                for r in conn.execute(select(table))
            }

    return read


def _fields(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two entries differ, as dotted paths with both values (short)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                out += _fields(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                out += _fields(x, y, f"{path}[{i}]")
        return out
    return [f"{path}: {str(a)[:80]} != {str(b)[:80]}"]


def compare_views(left: Views, right: Views, *, details: list[str] | None = None) -> list[str]:
    """Keys that are missing on one side or differ; empty when equal. With
    ``details``, the differing fields of the first few entries are added to it."""
    differences = []
    readers = (
        ("mongo.locations", _mongo(locations.COLLECTION)),
        ("mongo.partners", _mongo(partners.COLLECTION)),
        ("mongo.tariffs", _mongo(tariff_view.COLLECTION)),
        ("mongo.tokens", _mongo(tokens.COLLECTION)),
        ("mongo.hub_client_info", _mongo(hub_client_info.COLLECTION)),
        ("mongo.payment_terminals", _mongo(payments.TERMINALS)),
        ("mongo.payment_advices", _mongo(payments.ADVICES)),
        *(
            (f"mysql.{t.name}", _mysql(t))
            for t in (location_states, buildings, spaces, evses, connectors)
        ),
        ("mongo.sessions", _mongo(mongo_sessions.COLLECTION)),
        ("mysql.sessions", _mysql(session_rows)),
        ("mongo.cdrs", _mongo(CDR_COLLECTION)),
        ("mongo.tariff_history", _history(TARIFF_HISTORY)),
        ("mongo.location_history", _history(LOCATION_HISTORY)),
        ("mongo.evse_status_history", _history(EVSE_STATUS_HISTORY, KEPT_PER_LOCATION)),
        ("mysql.cdrs", _mysql(cdr_rows)),
        ("mysql.billing_corporations", _mysql(billing_corporations)),
        ("mysql.billing_members", _mysql_rows(billing_members)),
        ("mysql.billing_charges", _mysql(billing_charges)),
        ("mysql.billing_invoices", _mysql(billing_invoices)),
        ("mysql.billing_invoice_lines", _mysql_rows(billing_invoice_lines)),
        ("mysql.billing_credit_notes", _mysql(billing_credit_notes)),
        ("mysql.billing_credit_note_lines", _mysql_rows(billing_credit_note_lines)),
        ("mongo.sent_commands", _mongo(sent_commands.COLLECTION)),
        ("mongo.received_commands", _mongo(received_commands.COLLECTION)),
        ("mongo.sent_charging_profiles", _mongo(sent_charging_profiles.SENT)),
        ("mongo.partner_active_charging_profiles", _mongo(sent_charging_profiles.ACTIVE)),
        ("mongo.charge_points", _mongo(charge_points.COLLECTION)),
        ("mongo.dead_letters", _mongo(DEAD_LETTERS)),
        ("mongo.operator_accounts", _mongo(operators.ACCOUNTS)),
        ("mongo.api_keys", _mongo(operators.API_KEYS)),
        ("mongo.audit", _mongo(audit.COLLECTION)),
        ("mongo.counts", _counts),
        ("mongo.afir_sites", _mongo(afir.SITES)),
        ("mongo.afir_tariffs", _mongo(afir.TARIFFS)),
    )
    for name, read in readers:
        a, b = read(left), read(right)
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                differences.append(f"{name}:{key}")
                if details is not None and len(details) < 20:
                    details += [f"{name}:{key}: {d}" for d in _fields(a.get(key), b.get(key))][:5]
    return differences
