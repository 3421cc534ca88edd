"""QR station discovery: ``GET /public/evses/{evse_id}``, unauthenticated.

A driver scans the EVSE ID printed on a charger (eMI3, e.g.
``NL*ABC*E12345*1``; with or without ``*``, any case) and gets what a
station page shows: where it is, the EVSE's current status, its connectors
and a short price summary per connector. Only published locations are
found (locations module, ``publish``); nothing about partners, tokens or
our bookkeeping is in the answer, which is built field by field from an
allow-list (``public_station``), never by copying the served object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from api.deps import LocationViewDep, RateLimiterDep, SettingsDep, TariffViewDep
from api.errors import OcpiError, envelope
from ocpi_hub.settings import Settings
from projections.mongo.locations import evse_id_key
from schemas.ocpi.status_codes import OcpiStatus

router = APIRouter(prefix="/public", tags=["public: station discovery"])

Doc = dict[str, Any]

# EVSE.evse_id is string(48) (locations module, EVSE object); eMI3 IDs are
# letters, digits and the optional ``*`` separators.
EvseIdPath = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9*]+$")]

_LOCATION_FIELDS = (
    "name",
    "address",
    "city",
    "postal_code",
    "country",
    "coordinates",
    "time_zone",
    "opening_times",
)
_CONNECTOR_FIELDS = (
    "id",
    "standard",
    "format",
    "power_type",
    "max_voltage",
    "max_amperage",
    "max_electric_power",
)


def normalise_evse_id(evse_id: str) -> str:
    """The one form EVSE IDs are compared in (the view's ``evse_id_key``)."""
    return evse_id_key(evse_id)


def is_published(location: Mapping[str, Any]) -> bool:
    """``publish`` false hides a location from the public; absent shows it."""
    return location.get("publish", True) is not False


def find_evse(locations: Iterable[Doc], evse_id: str) -> tuple[Doc, Doc] | None:
    """The first published location with a present (not REMOVED) EVSE of
    this ``evse_id``, and that EVSE."""
    wanted = normalise_evse_id(evse_id)
    for location in locations:
        if not is_published(location):
            continue
        for evse in location.get("evses") or ():
            if evse.get("status") == "REMOVED" or not evse.get("evse_id"):
                continue
            if normalise_evse_id(evse["evse_id"]) == wanted:
                return location, evse
    return None


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def tariff_summary(tariff: Mapping[str, Any]) -> Doc:
    """Tariff id, currency and, per price component type, the price of the
    first element that has one (OCPI applies the first element whose
    restrictions match; restrictions are not evaluated here). ``incl_vat``
    only where the component names its VAT."""
    prices: dict[str, Doc] = {}
    for element in tariff.get("elements") or ():
        for component in element.get("price_components") or ():
            kind = component.get("type")
            price = _number(component.get("price"))
            if not kind or kind in prices or price is None:
                continue
            vat = _number(component.get("vat"))
            summary: Doc = {"excl_vat": _json_number(price)}
            if vat is not None:
                summary["incl_vat"] = _json_number(price * (1 + vat / 100))
            prices[kind] = summary
    return {"id": tariff.get("id"), "currency": tariff.get("currency"), "prices": prices}


def public_station(
    location: Mapping[str, Any], evse: Mapping[str, Any], tariffs: Mapping[str, Doc]
) -> Doc:
    """What the public sees of one EVSE: an allow-list of the location's,
    EVSE's and connectors' fields, and a summary of each connector tariff we
    hold (``tariffs`` by tariff id, as the connector names it)."""
    station: Doc = {f: location[f] for f in _LOCATION_FIELDS if location.get(f) is not None}
    operator = location.get("operator")
    if isinstance(operator, Mapping) and operator.get("name"):
        station["operator"] = {"name": operator["name"]}
    connectors = []
    for connector in evse.get("connectors") or ():
        shown: Doc = {f: connector[f] for f in _CONNECTOR_FIELDS if connector.get(f) is not None}
        ids = connector.get("tariff_ids") or ()
        shown["tariffs"] = [tariff_summary(tariffs[t]) for t in ids if t in tariffs]
        connectors.append(shown)
    station["evse"] = {
        "uid": evse.get("uid"),
        "evse_id": evse.get("evse_id"),
        "status": evse.get("status"),
        "connectors": connectors,
    }
    return station


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IPv4Network | IPv6Network]
) -> str:
    """The address a request is counted against.

    The connection's peer, unless the peer is one of our trusted proxies:
    then ``X-Forwarded-For`` is read from the right (each proxy appends the
    address it saw), skipping our own proxies, and the first address no
    proxy of ours vouches for is the client. Anything a client wrote further
    left is its own claim and never believed. A malformed entry stops the
    walk at the last address a trusted proxy gave.
    """
    if peer is None:
        return "unknown"
    if not _is_trusted(peer, trusted) or not forwarded_for:
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ip_address(hop)
        except ValueError:
            break
        client = hop
        if not _is_trusted(hop, trusted):
            break
    return client


def _is_trusted(address: str, trusted: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted if net.version == ip.version)


def _client(request: Request, settings: Settings) -> str:
    return client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        settings.public_trusted_proxies,
    )


async def rate_limited(request: Request, limiter: RateLimiterDep, settings: SettingsDep) -> None:
    """Refuse a client over its budget with HTTP 429 and ``Retry-After``."""
    verdict = await limiter.hit(
        _client(request, settings),
        settings.public_rate_limit_requests,
        settings.public_rate_limit_window_s,
    )
    if not verdict.allowed:
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            "too many requests; retry later",
            http_status=429,
            headers={"Retry-After": str(verdict.retry_after_s)},
        )


@router.get("/evses/{evse_id}", dependencies=[Depends(rate_limited)])
async def get_public_evse(
    evse_id: EvseIdPath, locations: LocationViewDep, tariffs: TariffViewDep
) -> dict[str, Any]:
    candidates = await locations.by_evse_id(evse_id)
    found = find_evse(candidates, evse_id)
    if found is None:
        raise OcpiError(
            OcpiStatus.UNKNOWN_LOCATION, f"no public EVSE with evse_id {evse_id}", http_status=404
        )
    location, evse = found
    wanted = {t for c in evse.get("connectors") or () for t in c.get("tariff_ids") or ()}
    held: dict[str, Doc] = {}
    for tariff_id in sorted(wanted):
        tariff = await tariffs.get(location["country_code"], location["party_id"], tariff_id)
        if tariff is not None:
            held[tariff_id] = tariff
    return envelope(public_station(location, evse, held))
