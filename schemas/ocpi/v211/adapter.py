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

from pydantic import ValidationError

from schemas.ocpi.common import OcpiModel, fold, format_ocpi_datetime
from schemas.ocpi.credentials import Credentials, CredentialsRole, Role
from schemas.ocpi.patch import patch_model
from schemas.ocpi.v211 import commands as k211
from schemas.ocpi.v211 import credentials as c211
from schemas.ocpi.v211 import locations as l211
from schemas.ocpi.v211 import sessions as s211
from schemas.ocpi.v211 import tariffs as r211
from schemas.ocpi.v211 import tokens as t211
from schemas.ocpi.versions import Endpoint, InterfaceRole, VersionDetails
from schemas.ocpi.wire import EdgeContext, Kind

Json = dict[str, Any]

_MODELS: dict[Kind, type[OcpiModel]] = {
    Kind.LOCATION: l211.Location,
    Kind.EVSE: l211.Evse,
    Kind.CONNECTOR: l211.Connector,
    Kind.TOKEN: t211.Token,
    Kind.TARIFF: r211.Tariff,
    Kind.SESSION: s211.Session,
    Kind.CDR: s211.Cdr,
    Kind.RESERVE_NOW: k211.ReserveNow,
    Kind.START_SESSION: k211.StartSession,
    Kind.STOP_SESSION: k211.StopSession,
    Kind.UNLOCK_CONNECTOR: k211.UnlockConnector,
    Kind.COMMAND_RESPONSE: k211.CommandResponse,
    Kind.COMMAND_RESULT: k211.CommandResponse,
    Kind.AUTHORIZATION: t211.AuthorizationInfo,
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
    # 2.1.1 requires a postal code, 2.2.1 does not (places without one): an
    # empty string, which string(10) allows, rather than an object a strict
    # partner refuses whole. A PATCH that clears it sends the same.
    if (not patch and "postal_code" not in d) or ("postal_code" in d and d["postal_code"] is None):
        d["postal_code"] = ""
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


# --- Sessions and CDRs: the embedded Location, the token by auth_id ------------------

_DIMENSIONS = frozenset(d.value for d in s211.CdrDimensionType)
_SESSION_STATUSES = frozenset(v.value for v in s211.SessionStatus)
_AUTH_METHODS = frozenset(v.value for v in s211.AuthMethod)


def _periods(periods: Any, known: frozenset[str]) -> Any:
    """Charging periods with the dimensions of ``known`` types only; a period
    left with none is left out (a period has at least one dimension)."""
    if not isinstance(periods, list):
        return periods
    kept = []
    for period in periods:
        period.pop("tariff_id", None)  # 2.1.1 names no tariff per period
        period["dimensions"] = [d for d in period.get("dimensions") or [] if d["type"] in known]
        if period["dimensions"]:
            kept.append(period)
    return kept


# Our (2.2.1) dimension types; 2.1.1's FLAT has no counterpart.
_OUR_DIMENSIONS = _DIMENSIONS - {"FLAT"}


def _token_in_session(d: Json, owner: tuple[str, str] | None, context: EdgeContext | None) -> None:
    """``auth_id`` (the Token's auth_id: our contract_id) -> our CdrToken, as
    the caller found it among our tokens; without one, a token of that uid
    under the URL's party, which the Sessions slice refuses as not ours."""
    auth_id = d.pop("auth_id")
    token = context.token if context else None
    if token is not None and fold(str(token.get("contract_id"))) == fold(str(auth_id)):
        d["cdr_token"] = copy.deepcopy(token)
        return
    cc, pid = owner or ("", "")
    d["cdr_token"] = {
        "country_code": cc,
        "party_id": pid,
        "uid": auth_id,
        "type": "OTHER",
        "contract_id": auth_id,
    }


def _where(location: Json) -> tuple[Json, Json, Json]:
    evse = location["evses"][0]
    return location, evse, evse["connectors"][0]


def _session_in(
    d: Json, owner: tuple[str, str] | None, patch: bool, context: EdgeContext | None
) -> Json:
    _rename(d, "start_datetime", "start_date_time")
    _rename(d, "end_datetime", "end_date_time")
    if "auth_id" in d:
        _token_in_session(d, owner, context)
    if "location" in d:
        # The embedded Location (validated as 2.1.1's) names where: its id,
        # its one EVSE and Connector. The rest of it is the CPO's Location,
        # which its Locations module tells us; the session keeps the reference.
        location, evse, connector = _where(d.pop("location"))
        d["location_id"], d["evse_uid"] = location["id"], evse["uid"]
        d["connector_id"] = connector["id"]
    if "total_cost" in d:
        cost = d["total_cost"]
        d["total_cost"] = None if cost is None else {"excl_vat": cost}
    if "charging_periods" in d:
        d["charging_periods"] = _periods(d["charging_periods"], _OUR_DIMENSIONS)
    if not patch:
        assert owner is not None, "a 2.1.1 Session PUT needs the party of its URL"
        d["country_code"], d["party_id"] = owner
    return d


def _cdr_location_in(location: Json) -> Json:
    where, evse, connector = _where(location)
    named = ("id", "name", "address", "city", "postal_code", "country", "coordinates")
    cdr_location: Json = {k: where[k] for k in named if k in where}
    return cdr_location | {
        "evse_uid": evse["uid"],
        # 2.2.1 requires the EVSE ID, 2.1.1 does not: the uid stands in.
        "evse_id": evse.get("evse_id") or evse["uid"],
        "connector_id": connector["id"],
        "connector_standard": connector["standard"],
        "connector_format": connector["format"],
        "connector_power_type": connector["power_type"],
    }


def _cdr_in(d: Json, owner: tuple[str, str] | None, context: EdgeContext | None) -> Json:
    assert owner is not None, "a 2.1.1 CDR needs the party that sent it"
    _rename(d, "stop_date_time", "end_date_time")
    _token_in_session(d, owner, context)
    d["cdr_location"] = _cdr_location_in(d.pop("location"))
    d["total_cost"] = {"excl_vat": d["total_cost"]}
    d["charging_periods"] = _periods(d["charging_periods"], _OUR_DIMENSIONS)
    if isinstance(d.get("tariffs"), list):
        d["tariffs"] = [_tariff_in(t, owner) for t in d["tariffs"]]
    d["country_code"], d["party_id"] = owner
    return d


def embedded_location(
    location: Json | None, location_id: str, evse_uid: str | None, connector_id: str | None
) -> Json:
    """The Location a 2.1.1 Session or CDR embeds, in 2.1.1's shape: ours
    (``location``, from the location view) with only the EVSE and Connector
    used; without it, the references alone (all we know)."""
    if location is None:
        evse: Json = {"uid": evse_uid, "connectors": [{"id": connector_id}]}
        return {"id": location_id, "evses": [evse] if evse_uid is not None else []}
    d = copy.deepcopy(location)
    evses = [e for e in d.get("evses") or [] if fold(str(e.get("uid"))) == fold(str(evse_uid))]
    for e in evses:
        e["connectors"] = [
            c
            for c in e.get("connectors") or []
            if fold(str(c.get("id"))) == fold(str(connector_id))
        ]
    d["evses"] = evses
    return _location_out(d, False)


def _price_out(d: Json, name: str) -> None:
    if name in d:
        cost = d[name]
        d[name] = cost.get("excl_vat") if isinstance(cost, dict) else cost


def _session_like_out(d: Json) -> None:
    for gone in ("country_code", "party_id", "authorization_reference"):
        d.pop(gone, None)
    if "cdr_token" in d:
        token = d.pop("cdr_token")
        d["auth_id"] = token.get("contract_id") if isinstance(token, dict) else None
    if d.get("auth_method") is not None and d["auth_method"] not in _AUTH_METHODS:
        # COMMAND (2.2.1): a session the eMSP started with a command, which
        # 2.1.1 counts as authorized at the eMSP's request.
        d["auth_method"] = "AUTH_REQUEST"
    _price_out(d, "total_cost")
    if "charging_periods" in d:
        d["charging_periods"] = _periods(d["charging_periods"], _DIMENSIONS)


def _session_out(d: Json, patch: bool, context: EdgeContext | None) -> Json:
    _session_like_out(d)
    _rename(d, "start_date_time", "start_datetime")
    _rename(d, "end_date_time", "end_datetime")
    if d.get("status") is not None and d["status"] not in _SESSION_STATUSES:
        d["status"] = "PENDING"  # RESERVATION: not started yet, as PENDING says
    named = [d.pop(k, None) for k in ("location_id", "evse_uid", "connector_id")]
    if named[0] is not None or not patch:
        d["location"] = embedded_location(
            context.location if context else None, str(named[0]), named[1], named[2]
        )
    return d


_CDR_GONE = (
    "session_id",
    "signed_data",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
    "invoice_reference_id",
    "credit",
    "credit_reference_id",
    "home_charging_compensation",
)


def _location_of_cdr(cdr_location: Json, last_updated: Any) -> Json:
    """A 2.1.1 Location from a CDR's own CdrLocation, when the location view
    does not hold it: what the CDR says, with the EVSE status UNKNOWN; the
    type, voltage and amperage it does not say are left out."""
    where = {k: v for k, v in cdr_location.items() if k in l211.Location.model_fields}
    where.pop("state", None)
    connector = {
        "id": cdr_location.get("connector_id"),
        "standard": cdr_location.get("connector_standard"),
        "format": cdr_location.get("connector_format"),
        "power_type": cdr_location.get("connector_power_type"),
        "last_updated": last_updated,
    }
    evse = {
        "uid": cdr_location.get("evse_uid"),
        "evse_id": cdr_location.get("evse_id"),
        "status": "UNKNOWN",
        "connectors": [connector],
        "last_updated": last_updated,
    }
    return where | {"type": "UNKNOWN", "evses": [evse], "last_updated": last_updated}


def _cdr_out(d: Json, context: EdgeContext | None) -> Json:
    for gone in _CDR_GONE:
        d.pop(gone, None)
    _session_like_out(d)
    _rename(d, "end_date_time", "stop_date_time")
    cdr_location = d.pop("cdr_location", None) or {}
    if context is not None and context.location is not None:
        d["location"] = embedded_location(
            context.location,
            str(cdr_location.get("id")),
            cdr_location.get("evse_uid"),
            cdr_location.get("connector_id"),
        )
    else:
        d["location"] = _location_of_cdr(cdr_location, d.get("last_updated"))
    if isinstance(d.get("tariffs"), list):
        d["tariffs"] = [_tariff_out(t) for t in d["tariffs"]]
    return d


# --- Commands -------------------------------------------------------------------------

_TOKEN_COMMANDS = frozenset({Kind.RESERVE_NOW, Kind.START_SESSION})
# 2.1.1 names no timeout for a command: how long we wait for a 2.1.1 CPO's
# result (the same order as our own chargers' command_timeout_s).
COMMAND_TIMEOUT_211_S = 120
# Our CommandResultType -> 2.1.1's one answer type. What 2.1.1 has no word
# for is a refusal; CANCELED_RESERVATION answers a command 2.1.1 lacks.
_RESULT_OUT = {
    "ACCEPTED": "ACCEPTED",
    "CANCELED_RESERVATION": "ACCEPTED",
    "NOT_SUPPORTED": "NOT_SUPPORTED",
    "REJECTED": "REJECTED",
    "TIMEOUT": "TIMEOUT",
}


def _message(text: str) -> list[Json]:
    return [{"language": "en", "text": text}]


def _command_in(kind: Kind, d: Json, owner: tuple[str, str] | None) -> Json:
    if kind in _TOKEN_COMMANDS:
        d["token"] = _token_in(d["token"], owner, False)
    if kind is Kind.RESERVE_NOW:
        d["reservation_id"] = str(d["reservation_id"])  # an int in 2.1.1, CiString(36) ours
    if kind is Kind.COMMAND_RESPONSE:
        # A 2.1.1 CPO's immediate answer has no timeout and may say TIMEOUT,
        # which 2.2.1 leaves to the result.
        result = d["result"]
        d["timeout"] = COMMAND_TIMEOUT_211_S
        if result == "TIMEOUT":
            d["result"], d["message"] = "REJECTED", _message("TIMEOUT (OCPI 2.1.1)")
    if kind is Kind.COMMAND_RESULT and d["result"] == "UNKNOWN_SESSION":
        d["result"], d["message"] = "FAILED", _message("UNKNOWN_SESSION (OCPI 2.1.1)")
    return d


def _command_out(kind: Kind, d: Json) -> Json:
    if kind in _TOKEN_COMMANDS:
        d.pop("authorization_reference", None)
        if isinstance(d.get("token"), dict):
            d["token"] = _token_out(d["token"])
    if kind is Kind.START_SESSION:
        d.pop("connector_id", None)  # 2.1.1: the CPO picks the connector
    if kind is Kind.RESERVE_NOW and str(d.get("reservation_id", "")).isdigit():
        d["reservation_id"] = int(d["reservation_id"])
    if kind is Kind.COMMAND_RESPONSE:
        return {"result": d["result"]}
    if kind is Kind.COMMAND_RESULT:
        return {"result": _RESULT_OUT.get(d["result"], "REJECTED")}
    return d


class V211:
    """OCPI 2.1.1."""

    version = "2.1.1"
    # transport_and_format.md (2.1.1): "Authorization: Token <token>", as is.
    raw_token = True
    routing_headers = False
    token_type_in_url = False
    needs_partner_role = True
    embeds_location = True
    modules = frozenset(
        {"locations", "tariffs", "tokens", "sessions", "cdrs", "commands", "credentials"}
    )

    def object_in(
        self,
        kind: Kind,
        body: Any,
        *,
        owner: tuple[str, str] | None,
        patch: bool,
        now: datetime,
        context: EdgeContext | None = None,
    ) -> Any:
        model = _MODELS.get(kind)
        if model is None:
            raise ValidationError.from_exception_data(
                f"OCPI {self.version}",
                [
                    {
                        "type": "value_error",
                        "loc": (kind.value,),
                        "input": body,
                        "ctx": {"error": f"OCPI {self.version} has no {kind.value} object"},
                    }
                ],
            )
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
        if kind is Kind.SESSION:
            return _session_in(d, owner, patch, context)
        if kind is Kind.CDR:
            return _cdr_in(d, owner, context)
        if kind is Kind.TOKEN:
            return _token_in(d, owner, patch)
        if kind is Kind.AUTHORIZATION:
            # A 2.1.1 eMSP's answer names no token: the one we asked about.
            if context is not None and context.token is not None:
                d["token"] = copy.deepcopy(context.token)
            return d
        return _command_in(kind, d, owner)

    def object_out(
        self, kind: Kind, obj: Json, *, patch: bool, context: EdgeContext | None = None
    ) -> Json:
        d = copy.deepcopy(obj)
        if kind is Kind.SESSION:
            return _session_out(d, patch, context)
        if kind is Kind.CDR:
            return _cdr_out(d, context)
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
        if kind is Kind.AUTHORIZATION:
            return _authorization_out(d)
        return _command_out(kind, d)

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
