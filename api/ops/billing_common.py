"""What the billing ops routes share (api/ops/billing.py, credit_notes.py,
invoice_files.py): a MySQL row as JSON, and the origin of a write we make
on the platform's own behalf."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.deps import ContainerDep
from producers.write_path import Origin
from schemas.events import Party

Json = dict[str, Any]


def row_json(row: Json) -> Json:
    """A row as JSON: decimals as exact strings, times in ISO 8601 (UTC)."""
    out: Json = {}
    for name, value in row.items():
        if isinstance(value, datetime):
            out[name] = value.isoformat(timespec="milliseconds") + "Z"
        elif value is None or isinstance(value, str | int | bool):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def our_origin(c: ContainerDep, correlation_id: str) -> Origin:
    """Us (the settings' party) as the writer, with the request's correlation id."""
    s = c.settings
    return Origin(Party(country_code=s.party_country_code, party_id=s.party_id), correlation_id)
