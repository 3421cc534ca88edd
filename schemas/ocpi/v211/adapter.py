"""The OCPI 2.1.1 edge adapter (docs/adr/0045, docs/ocpi-versions.md):
2.1.1 objects to our model (OCPI 2.2.1-shaped) and back.

Inbound, a body is first validated as 2.1.1 (its required fields, enums and
limits: a 2.2.1 object sent to a 2.1.1 endpoint is refused there), then
renamed and completed into our model, which the slice's ``decide`` validates
again. Outbound, our objects lose what 2.1.1 cannot say. The conversions
work field by field on JSON, so the same code converts whole objects and
PATCH fragments, and keeps unknown fields as they came.

What 2.1.1 says and 2.2.1 cannot hold is kept where our model keeps unknown
fields: a Location ``type`` of OTHER (no ParkingType for it) stays in the
object as ``type``, and comes back out to 2.1.1 partners.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from schemas.ocpi.common import OcpiModel, format_ocpi_datetime
from schemas.ocpi.credentials import Credentials, CredentialsRole, Role
from schemas.ocpi.patch import patch_model
from schemas.ocpi.v211 import credentials as c211
from schemas.ocpi.v211 import locations as l211
from schemas.ocpi.v211 import tariffs as r211
from schemas.ocpi.v211 import tokens as t211
from schemas.ocpi.versions import Endpoint, InterfaceRole, VersionDetails
from schemas.ocpi.wire import Kind

Json = dict[str, Any]

_MODELS: dict[Kind, type[OcpiModel]] = {
    Kind.LOCATION: l211.Location,
    Kind.EVSE: l211.Evse,
    Kind.CONNECTOR: l211.Connector,
    Kind.TOKEN: t211.Token,
    Kind.TARIFF: r211.Tariff,
}

# 2.1.1 LocationType -> 2.2.1 ParkingType. OTHER and UNKNOWN have none.
_PARKING_IN = {
    "ON_STREET": "ON_STREET",
    "PARKING_GARAGE": "PARKING_GARAGE",
    "UNDERGROUND_GARAGE": "UNDERGROUND_GARAGE",
    "PARKING_LOT": "PARKING_LOT",
}
_LOCATION_TYPES = frozenset(t.value for t in l211.LocationType)
_CAPABILITIES = frozenset(c.value for c in l211.Capability)
_FACILITIES = frozenset(f.value for f in l211.Facility)
_TOKEN_TYPES = frozenset(t.value for t in t211.TokenType)

# A 2.1.1 party has one role, and each module one interface per role: a
# CPO's locations endpoint is its Sender, an eMSP's its Receiver.
_CPO_SENDS = frozenset({"locations", "tariffs", "sessions", "cdrs", "credentials"})
_EMSP_SENDS = frozenset({"tokens", "commands", "credentials"})


def interface_of(identifier: str, role: Role) -> InterfaceRole:
    """The interface a 2.1.1 party of ``role`` offers for a module."""
    sends = _CPO_SENDS if role is Role.CPO else _EMSP_SENDS
    return InterfaceRole.SENDER if identifier in sends else InterfaceRole.RECEIVER


def _rename(d: Json, old: str, new: str) -> None:
    if old in d:
        d[new] = d.pop(old)


# --- inbound: 2.1.1 -> our model ------------------------------------------------------


def _hours_in(h: Json) -> Json:
    # 2.2.1 makes twentyfourseven required; 2.1.1 leaves it out with regular hours.
    if h.get("twentyfourseven") is None:
        h["twentyfourseven"] = False
    return h


def _energy_mix_in(mix: Json) -> Json:
    for impact in mix.get("environ_impact") or []:
        if isinstance(impact, dict):
            _rename(impact, "source", "category")
    return mix


def _connector_in(c: Json, patch: bool) -> Json:
    _rename(c, "voltage", "max_voltage")
    _rename(c, "amperage", "max_amperage")
    if "tariff_id" in c:
        tariff = c.pop("tariff_id")
        if tariff is not None:
            c["tariff_ids"] = [tariff]
        elif patch:
            c["tariff_ids"] = None
    return c


def _evse_in(e: Json, patch: bool) -> Json:
    if isinstance(e.get("connectors"), list):
        e["connectors"] = [_connector_in(c, False) for c in e["connectors"]]
    return e


def _location_in(d: Json, owner: tuple[str, str] | None, patch: bool) -> Json:
    if "type" in d:
        kind = d.pop("type")
        parking = _PARKING_IN.get(kind)
        if patch:
            d["parking_type"] = parking
            d["type"] = "OTHER" if kind == "OTHER" else None  # null: drop a kept OTHER
        else:
            if parking is not None:
                d["parking_type"] = parking
            if kind == "OTHER":
                d["type"] = kind
    if not patch:
        assert owner is not None, "a 2.1.1 Location PUT needs the party of its URL"
        d["country_code"], d["party_id"] = owner
        # 2.1.1 has no publish flag: every location it shares is public.
        d.setdefault("publish", True)
    if isinstance(d.get("evses"), list):
        d["evses"] = [_evse_in(e, False) for e in d["evses"]]
    if isinstance(d.get("opening_times"), dict):
        d["opening_times"] = _hours_in(d["opening_times"])
    if isinstance(d.get("energy_mix"), dict):
        d["energy_mix"] = _energy_mix_in(d["energy_mix"])
    return d


def _tariff_in(d: Json, owner: tuple[str, str] | None) -> Json:
    assert owner is not None, "a 2.1.1 Tariff PUT needs the party of its URL"
    d["country_code"], d["party_id"] = owner
    if isinstance(d.get("energy_mix"), dict):
        d["energy_mix"] = _energy_mix_in(d["energy_mix"])
    return d


def _token_in(d: Json, owner: tuple[str, str] | None, patch: bool) -> Json:
    _rename(d, "auth_id", "contract_id")
    if not patch:
        assert owner is not None, "a 2.1.1 Token PUT needs the party of its URL"
        d["country_code"], d["party_id"] = owner
    return d


# --- outbound: our model -> 2.1.1 -----------------------------------------------------


def _hours_out(h: Json) -> Json:
    if h.get("twentyfourseven"):
        h.pop("regular_hours", None)
    else:
        h.pop("twentyfourseven", None)
    return h


def _energy_mix_out(mix: Json) -> Json:
    for impact in mix.get("environ_impact") or []:
        if isinstance(impact, dict):
            _rename(impact, "category", "source")
    return mix


def _only(values: Any, known: frozenset[str]) -> Any:
    return [v for v in values if v in known] if isinstance(values, list) else values


def _connector_out(c: Json, patch: bool) -> Json:
    _rename(c, "max_voltage", "voltage")
    _rename(c, "max_amperage", "amperage")
    c.pop("max_electric_power", None)
    if "tariff_ids" in c:
        tariffs = c.pop("tariff_ids")
        if tariffs:
            c["tariff_id"] = tariffs[0]  # 2.1.1 holds one
        elif patch:
            c["tariff_id"] = None
    return c


def _evse_out(e: Json, patch: bool) -> Json:
    if "capabilities" in e:
        e["capabilities"] = _only(e["capabilities"], _CAPABILITIES)
    if isinstance(e.get("connectors"), list):
        e["connectors"] = [_connector_out(c, False) for c in e["connectors"]]
    return e


def _location_out(d: Json, patch: bool) -> Json:
    for gone in ("country_code", "party_id", "publish", "publish_allowed_to", "state"):
        d.pop(gone, None)
    kept = d.pop("type", None)
    if "parking_type" in d or not patch:
        parking = d.pop("parking_type", None)
        if parking in _PARKING_IN:
            d["type"] = parking
        elif parking is not None:
            d["type"] = "OTHER"  # ALONG_MOTORWAY, ON_DRIVEWAY: none of 2.1.1's
        else:
            d["type"] = kept if kept in _LOCATION_TYPES else "UNKNOWN"
    elif kept in _LOCATION_TYPES:
        d["type"] = kept
    if "facilities" in d:
        d["facilities"] = _only(d["facilities"], _FACILITIES)
    if isinstance(d.get("evses"), list):
        d["evses"] = [_evse_out(e, False) for e in d["evses"]]
    if isinstance(d.get("opening_times"), dict):
        d["opening_times"] = _hours_out(d["opening_times"])
    if isinstance(d.get("energy_mix"), dict):
        d["energy_mix"] = _energy_mix_out(d["energy_mix"])
    return d


# Restrictions 2.1.1 has no place for. An element restricted by one of them
# is left out rather than sent unrestricted: it would price what it does not.
_RESTRICTIONS_211 = frozenset(r211.TariffRestrictions.model_fields)


def _tariff_out(d: Json) -> Json:
    for gone in ("country_code", "party_id", "type", "min_price", "max_price"):
        d.pop(gone, None)
    d.pop("start_date_time", None)
    d.pop("end_date_time", None)
    elements = []
    for element in d.get("elements") or []:
        restrictions = element.get("restrictions") or {}
        if any(k not in _RESTRICTIONS_211 and v is not None for k, v in restrictions.items()):
            continue
        for component in element.get("price_components") or []:
            component.pop("vat", None)
        elements.append(element)
    if elements:
        d["elements"] = elements
    if isinstance(d.get("energy_mix"), dict):
        d["energy_mix"] = _energy_mix_out(d["energy_mix"])
    return d


def _token_out(d: Json) -> Json:
    for gone in ("country_code", "party_id", "group_id", "default_profile_type"):
        d.pop(gone, None)
    d.pop("energy_contract", None)
    _rename(d, "contract_id", "auth_id")
    if "type" in d and d["type"] not in _TOKEN_TYPES:
        d["type"] = "OTHER"  # AD_HOC_USER, APP_USER
    return d


def _authorization_out(d: Json) -> Json:
    d.pop("token", None)
    d.pop("authorization_reference", None)
    return d


class V211:
    """OCPI 2.1.1."""

    version = "2.1.1"
    # transport_and_format.md (2.1.1): "Authorization: Token <token>", as is.
    raw_token = True
    routing_headers = False
    token_type_in_url = False
    needs_partner_role = True
    modules = frozenset({"locations", "tariffs", "tokens", "credentials"})

    def object_in(
        self,
        kind: Kind,
        body: Any,
        *,
        owner: tuple[str, str] | None,
        patch: bool,
        now: datetime,
    ) -> Any:
        model = _MODELS[kind]
        if not isinstance(body, dict):
            model.model_validate(body)  # raises: not an object
            return body
        d = copy.deepcopy(body)
        if patch and "last_updated" not in d:
            # A 2.1.1 PATCH may leave last_updated out; ours needs it.
            d["last_updated"] = format_ocpi_datetime(now)
        (patch_model(model) if patch else model).model_validate(d)
        if kind is Kind.LOCATION:
            return _location_in(d, owner, patch)
        if kind is Kind.EVSE:
            return _evse_in(d, patch)
        if kind is Kind.CONNECTOR:
            return _connector_in(d, patch)
        if kind is Kind.TARIFF:
            return _tariff_in(d, owner)
        return _token_in(d, owner, patch)

    def object_out(self, kind: Kind, obj: Json, *, patch: bool) -> Json:
        d = copy.deepcopy(obj)
        if kind is Kind.LOCATION:
            return _location_out(d, patch)
        if kind is Kind.EVSE:
            return _evse_out(d, patch)
        if kind is Kind.CONNECTOR:
            return _connector_out(d, patch)
        if kind is Kind.TOKEN:
            return _token_out(d)
        if kind is Kind.TARIFF:
            return _tariff_out(d)
        return _authorization_out(d)

    def credentials_in(self, body: Any, partner_role: Role | None) -> Credentials:
        theirs = c211.Credentials.model_validate(body)
        # 2.1.1 names no role: the one the partner was invited for, else both
        # (a platform that plays CPO and eMSP under one party, as we do).
        roles = [partner_role] if partner_role else [Role.CPO, Role.EMSP]
        return Credentials(
            token=theirs.token,
            url=theirs.url,
            roles=[
                CredentialsRole(
                    role=role,
                    business_details=theirs.business_details,
                    party_id=theirs.party_id,
                    country_code=theirs.country_code,
                )
                for role in roles
            ],
        )

    def credentials_out(self, ours: Credentials) -> Json:
        first = ours.roles[0]
        return {
            "token": ours.token,
            "url": str(ours.url),
            "business_details": first.business_details.model_dump(mode="json", exclude_none=True),
            "party_id": first.party_id,
            "country_code": first.country_code,
        }

    def details_in(self, body: Any, partner_role: Role | None) -> VersionDetails:
        details = c211.VersionDetails.model_validate(body)
        if partner_role not in (Role.CPO, Role.EMSP):
            raise ValueError("OCPI 2.1.1 endpoints name no role: the partner must be a CPO or eMSP")
        return VersionDetails(
            version=details.version,
            endpoints=[
                Endpoint(
                    identifier=e.identifier,
                    role=interface_of(e.identifier, partner_role),
                    url=e.url,
                )
                for e in details.endpoints
            ],
        )

    def endpoints_out(self, endpoints: list[Endpoint], partner_role: Role | None) -> list[Json]:
        # We play the other role towards a 2.1.1 partner: list that role's
        # interfaces only (a module listed twice would be ambiguous in 2.1.1).
        ours = {Role.CPO: Role.EMSP, Role.EMSP: Role.CPO}.get(partner_role)  # type: ignore[arg-type]
        return [
            {"identifier": e.identifier, "url": str(e.url)}
            for e in endpoints
            if e.identifier in self.modules
            and (ours is None or e.role is interface_of(e.identifier, ours))
        ]
