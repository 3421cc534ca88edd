"""What the dashboard's pages show of view documents: pure functions from
OCPI objects as the views hold them to the rows a template renders
(api/admin/pages.py). No I/O; money is shown exactly as stored (the views
keep exact decimals), never through a float."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.ocpi.common import fold, format_ocpi_datetime

Json = dict[str, Any]

ACTIVE_STATES = ["ACTIVE", "PENDING", "RESERVATION"]
PAST_STATES = ["COMPLETED", "INVALID"]


def amount(value: Any) -> str:
    """An exact amount as text with two decimals at least (more when the
    amount has them: a tariff may price to the tenth of a cent)."""
    if value is None:
        return ""
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if exact == exact.quantize(Decimal("0.01")):
        return f"{exact.quantize(Decimal('0.01')):,}"
    return f"{exact.normalize():,f}"


def price(value: Json | None, currency: str = "") -> str:
    """An OCPI Price: "12.34 EUR (14.93 incl. VAT)"."""
    if not value:
        return ""
    text = f"{amount(value.get('excl_vat'))} {currency}".strip()
    if value.get("incl_vat") is not None:
        text += f" ({amount(value['incl_vat'])} incl. VAT)"
    return text


def when(stamp: str | None) -> str:
    """An OCPI DateTime for people: "2026-06-01 12:00:00 UTC"."""
    if not stamp:
        return ""
    return stamp.replace("T", " ").removesuffix("Z") + " UTC"


def duration(hours: Any) -> str:
    """Hours (an exact number) as "1 h 05 min"."""
    if hours is None:
        return ""
    minutes = int((Decimal(str(hours)) * 60).to_integral_value())
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def session_row(session: Json) -> Json:
    token = session.get("cdr_token") or {}
    return {
        "id": session["id"],
        "party": f"{session['country_code']}-{session['party_id']}",
        "where": " / ".join(
            str(session[k]) for k in ("location_id", "evse_uid", "connector_id") if session.get(k)
        ),
        "token": f"{token.get('uid', '')} ({token.get('country_code', '')}-"
        f"{token.get('party_id', '')})",
        "status": session["status"],
        "started": when(session.get("start_date_time")),
        "ended": when(session.get("end_date_time")),
        "kwh": amount(session.get("kwh")),
        "cost": price(session.get("total_cost"), session.get("currency", "")),
    }


# The parts of a CDR's total, in the order mod_cdrs lists them.
_PARTS = (
    ("Fixed", "total_fixed_cost"),
    ("Energy", "total_energy_cost"),
    ("Time", "total_time_cost"),
    ("Parking", "total_parking_cost"),
    ("Reservation", "total_reservation_cost"),
)


def cdr_row(cdr: Json, *, credited: bool) -> Json:
    """One of our CDRs with its price breakdown; ``credited``: a Credit CDR
    of it exists (it may be credited once)."""
    currency = cdr.get("currency", "")
    location = cdr.get("cdr_location") or {}
    token = cdr.get("cdr_token") or {}
    parts = [
        {"label": label, "price": price(cdr[field], currency)}
        for label, field in _PARTS
        if cdr.get(field) is not None
    ]
    return {
        "id": cdr["id"],
        "session_id": cdr.get("session_id", ""),
        "where": " / ".join(
            str(location[k]) for k in ("id", "evse_uid", "connector_id") if location.get(k)
        ),
        "token": f"{token.get('uid', '')} ({token.get('country_code', '')}-"
        f"{token.get('party_id', '')})",
        "started": when(cdr.get("start_date_time")),
        "ended": when(cdr.get("end_date_time")),
        "energy": amount(cdr.get("total_energy")),
        "time": duration(cdr.get("total_time")),
        "parking": duration(cdr.get("total_parking_time")),
        "total": price(cdr.get("total_cost"), currency),
        "parts": parts,
        "tariffs": [t.get("id", "") for t in cdr.get("tariffs") or []],
        "periods": len(cdr.get("charging_periods") or []),
        "is_credit": bool(cdr.get("credit")),
        "credit_of": cdr.get("credit_reference_id") or "",
        "credited": credited,
        "may_credit": not cdr.get("credit") and not credited,
    }


def reconciliation_row(doc: Json) -> Json:
    """A CDR a partner sent us with our own price of it."""
    r = doc.get("reconciliation") or {}
    currency = doc.get("currency", "")
    if not r:
        verdict, tone = "not reconciled yet", "pending"
    elif r.get("expected_excl_vat") is None:
        verdict, tone = "no tariff to price it with", "pending"
    elif r.get("discrepancy"):
        verdict, tone = "discrepancy", "bad"
    else:
        verdict, tone = "matches", "ok"
    return {
        "cdr_id": doc["cdr_id"],
        "party": f"{doc['country_code']}-{doc['party_id']}",
        "charged": f"{amount(r.get('charged_excl_vat'))} {currency}" if r else "",
        "expected": f"{amount(r.get('expected_excl_vat'))} {currency}"
        if r.get("expected_excl_vat") is not None
        else "",
        "difference": amount(r.get("difference")) if r.get("difference") is not None else "",
        "tariff": r.get("tariff_id") or "",
        "tariff_source": r.get("tariff_source") or "",
        "note": r.get("note") or "",
        "verdict": verdict,
        "tone": tone,
    }


def ago(seconds: float | None) -> str:
    """How long ago, in words for people."""
    if seconds is None:
        return "never"
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 172_800:
        return f"{s // 3600} h ago"
    return f"{s // 86_400} days ago"


def partner_row(
    partner: Json,
    stats: dict[str, dict[str, Any]],
    backlog: dict[str, int | None],
    now: float,
) -> Json:
    """A partner as the partners page shows it: ``partner`` its state
    without secrets, ``stats`` what its push lanes and pulls recorded
    (producers/partner_stats.py), ``backlog`` each push lane's lag (None:
    unknown), ``now`` the epoch time."""
    roles = [
        {
            "role": r["role"],
            "party": f"{r['country_code']}-{r['party_id']}",
            "name": (r.get("business_details") or {}).get("name", ""),
        }
        for r in partner.get("roles") or []
    ]
    endpoints = [
        {"identifier": e["identifier"], "role": e["role"], "url": e["url"]}
        for e in partner.get("endpoints") or []
    ]
    modules = sorted({m for m in stats if not m.startswith("pull-")} | set(backlog))
    pushes = []
    for module in modules:
        s = stats.get(module, {})
        pushes.append(
            {
                "module": module,
                "last_ok": ago(now - s["last_delivered_at"])
                if "last_delivered_at" in s
                else "never",
                "delivered": s.get("delivered", 0),
                "failures": s.get("failures", 0),
                "repaired": s.get("repaired", 0),
                "last_failure": s.get("last_failure", ""),
                "last_failure_ago": ago(now - s["last_failure_at"])
                if "last_failure_at" in s
                else "",
                "backlog": backlog.get(module),
            }
        )
    pulls = [
        {"module": m.removeprefix("pull-"), "last": ago(now - s["last_pulled_at"])}
        for m, s in sorted(stats.items())
        if m.startswith("pull-") and "last_pulled_at" in s
    ]
    return {
        "id": partner["partner_id"],
        "status": partner["status"],
        "direction": partner.get("direction") or "",
        "invited_as": partner.get("invited_as") or "",
        "version": partner.get("version") or "",
        "versions_url": partner.get("versions_url") or "",
        "roles": roles,
        "endpoints": endpoints,
        "pushes": pushes,
        "pulls": pulls,
        "failing": any(p["failures"] for p in pushes),
        "backlog_total": sum(p["backlog"] or 0 for p in pushes),
    }


def location_pin(location: Json) -> Json | None:
    """A location's marker on the map: None without usable coordinates."""
    where = location.get("coordinates") or {}
    try:
        lat, lon = float(where["latitude"]), float(where["longitude"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    statuses = [e.get("status", "UNKNOWN") for e in location.get("evses") or []]
    return {
        "lat": lat,
        "lon": lon,
        "name": location.get("name") or location["id"],
        "href": f"/admin/locations/{location['country_code']}/{location['party_id']}/"
        f"{location['id']}",
        "available": statuses.count("AVAILABLE"),
        "evses": len(statuses),
    }


def location_row(location: Json) -> Json:
    statuses = [e.get("status", "UNKNOWN") for e in location.get("evses") or []]
    return {
        "id": location["id"],
        "party": f"{location['country_code']}-{location['party_id']}",
        "name": location.get("name") or "",
        "address": ", ".join(
            str(location[k]) for k in ("address", "city", "country") if location.get(k)
        ),
        "evses": len(statuses),
        "available": statuses.count("AVAILABLE"),
        "published": location.get("publish", True),
        "href": f"/admin/locations/{location['country_code']}/{location['party_id']}/"
        f"{location['id']}",
        "updated": when(location.get("last_updated")),
    }


def _evse_statuses(event: Any) -> list[tuple[str, str]]:
    """(EVSE uid, status) that one PUT or PATCH of a location states."""
    p = event.payload
    if p.connector_id is not None:
        return []
    if hasattr(p, "object"):
        if p.evse_uid is None:
            return [(e["uid"], e["status"]) for e in p.object.get("evses") or [] if "status" in e]
        return [(p.evse_uid, p.object["status"])] if "status" in p.object else []
    if p.evse_uid is not None and p.patch.get("status"):
        return [(p.evse_uid, p.patch["status"])]
    if p.evse_uid is None and isinstance(p.patch.get("evses"), list):
        return [(e["uid"], e["status"]) for e in p.patch["evses"] if "uid" in e and "status" in e]
    return []


def _aware(at: datetime) -> datetime:
    # The document store hands back naive UTC datetimes.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def status_history(
    events: list[Any],
    derived: Sequence[Json] = (),
    *,
    us: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[Json]:
    """Each EVSE's status changes, newest first: those its owner stated in
    the location's PUTs and PATCHes (``events``, oldest first; ``ops`` when
    the owner is us, else ``partner``), a row when the owner's statement of
    an EVSE differs from its previous one; and the statuses our chargers'
    facts resolved (``derived``: the evse_status_history view's entries,
    newest first; only those whose signal is ``charger``). "Was" is the
    status of the EVSE's previous row, whoever it came from."""
    lines: list[tuple[datetime, int, str, str, str, str]] = []
    for event in events:
        how = "replaced" if hasattr(event.payload, "object") else "updated"
        party = (fold(event.source.country_code), fold(event.source.party_id))
        source = "ops" if party == us else "partner"
        for uid, status in _evse_statuses(event):
            lines.append((_aware(event.payload.last_updated), len(lines), uid, status, how, source))
    for doc in reversed(derived):
        if doc.get("signal") != "charger":
            continue
        said = doc.get("reported_status")
        how = f"owner says {said}" if said else "resolved"
        at = _aware(doc["last_updated"])
        lines.append((at, len(lines), doc["evse_uid"], doc["status"], how, "charger"))
    lines.sort(key=lambda line: (line[0], line[1]))
    owner_said: dict[str, str] = {}
    shown: dict[str, str] = {}
    rows: list[Json] = []
    for at, _, uid, status, how, source in lines:
        key = uid.upper()
        if source != "charger":
            if owner_said.get(key) == status:
                continue
            owner_said[key] = status
        rows.append(
            {
                "at": when(format_ocpi_datetime(at)),
                "evse_uid": uid,
                "before": shown.get(key, ""),
                "status": status,
                "how": how,
                "source": source,
            }
        )
        shown[key] = status
    newest = rows[::-1]
    return newest[:limit] if limit is not None else newest


def token_row(token: Json, policy: Json | None, *, ours: bool) -> Json:
    """A token and what our real-time authorization does with it (our own
    tokens' policy; a partner's token is only whitelisted or not)."""
    p = policy or {}
    rules = []
    if p.get("expires_at"):
        rules.append(f"expires {when(str(p['expires_at']))}")
    if p.get("location_ids"):
        rules.append("only at " + ", ".join(p["location_ids"]))
    return {
        "uid": token["uid"],
        "type": token.get("type", ""),
        "party": f"{token['country_code']}-{token['party_id']}",
        "contract_id": token.get("contract_id", ""),
        "issuer": token.get("issuer", ""),
        "valid": bool(token.get("valid")),
        "whitelist": token.get("whitelist", ""),
        "ours": ours,
        "state": p.get("state", "ALLOWED") if ours else "",
        "rules": "; ".join(rules),
        "updated": when(token.get("last_updated")),
    }
