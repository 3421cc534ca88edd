"""The OCPI 2.3.0 edge adapter (docs/adr/0045 §6, docs/adr/0046,
docs/ocpi-versions.md "2.3.0"): 2.3.0 objects to our model (OCPI
2.2.1-shaped) and back, on the same routes as every version.

Inbound, a body is first validated as 2.3.0 (``schemas/ocpi/v230/``: its
OpenEnums, ``parking_places``, a Tariff's required ``tax_included``...),
then converted by ``mapping``: what 2.2.1 cannot hold is kept in the core
object, so it is served back and pushed on to 2.3.0 partners whole. The
slice's ``decide`` then validates the result as our model. Outbound, the
kept values are put back and 2.2.1's own fields are given their 2.3.0
shape (PriceLimit, ``tax_included`` NO for a 2.2.1 tariff).

Transport is 2.2.1's: base64 tokens, routing headers, ``?type=`` on token
URLs, roles in the credentials (plus ``hub_party_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.ocpi.common import OcpiModel
from schemas.ocpi.credentials import Credentials, CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.patch import patch_model
from schemas.ocpi.tariffs import exact_numbers, json_numbers
from schemas.ocpi.v230 import cdrs as d230
from schemas.ocpi.v230 import commands as k230
from schemas.ocpi.v230 import credentials as c230
from schemas.ocpi.v230 import locations as l230
from schemas.ocpi.v230 import mapping
from schemas.ocpi.v230 import sessions as s230
from schemas.ocpi.v230 import tariffs as r230
from schemas.ocpi.v230 import tokens as t230
from schemas.ocpi.versions import Endpoint, VersionDetails
from schemas.ocpi.wire import EdgeContext, Kind

Json = dict[str, Any]

# The modules we serve in OCPI 2.3.0 (module ids). Serving one more is this
# line: the version details list it (its endpoints come from
# api/ocpi/versions.py), its routes stop answering 3002 for 2.3.0, and the
# push lanes and pull syncs take 2.3.0 partners for it. Payments is 2.3.0's
# only (api/ocpi/payments.py): listed here, it is in /ocpi/2.3.0.
MODULES = frozenset(
    {
        "credentials",
        "locations",
        "tariffs",
        "tokens",
        "sessions",
        "cdrs",
        "commands",
        "chargingprofiles",
        "hubclientinfo",
        "payments",
    }
)

_MODELS: dict[Kind, type[OcpiModel]] = {
    Kind.LOCATION: l230.Location,
    Kind.EVSE: l230.Evse,
    Kind.CONNECTOR: l230.Connector,
    Kind.TOKEN: t230.Token,
    # A Tariff PUT: tax_included required (one embedded in a CDR may lack it).
    Kind.TARIFF: r230.TariffObject,
    Kind.SESSION: s230.Session,
    Kind.CDR: d230.Cdr,
    # The answer of a 2.3.0 eMSP to our real-time authorization request.
    Kind.AUTHORIZATION: t230.AuthorizationInfo,
    # Commands: a Token of 2.3.0 in two of them; the others are 2.2.1's.
    Kind.CANCEL_RESERVATION: k230.CancelReservation,
    Kind.RESERVE_NOW: k230.ReserveNow,
    Kind.START_SESSION: k230.StartSession,
    Kind.STOP_SESSION: k230.StopSession,
    Kind.UNLOCK_CONNECTOR: k230.UnlockConnector,
    Kind.COMMAND_RESPONSE: k230.CommandResponse,
    Kind.COMMAND_RESULT: k230.CommandResult,
}

# The objects that carry a Token (its 2.3.0 TokenType is an OpenEnum).
_WITH_TOKEN = frozenset({Kind.AUTHORIZATION, Kind.RESERVE_NOW, Kind.START_SESSION})


def _convert(kind: Kind, d: Json, inward: bool) -> None:
    if kind is Kind.LOCATION:
        mapping.location_json(d, inward)
    elif kind is Kind.EVSE:
        mapping.evse_json(d, inward)
    elif kind is Kind.CONNECTOR:
        mapping.connector_json(d, inward)
    elif kind is Kind.TARIFF:
        mapping.tariff_json(d, inward)
    elif kind is Kind.TOKEN:
        mapping.token_json(d, inward)
    elif kind is Kind.SESSION:
        mapping.session_json(d, inward)
    elif kind is Kind.CDR:
        mapping.cdr_json(d, inward)
    elif kind in _WITH_TOKEN:  # AuthorizationInfo, StartSession, ReserveNow
        mapping.with_token_json(d, inward)
    # Other commands and their answers: 2.2.1's objects, nothing to convert.


def _business_in(details: l230.BusinessDetails) -> BusinessDetails:
    d: Json = details.model_dump(mode="json", exclude_none=True)
    mapping.business_json(d, inward=True)  # a logo's open ImageCategory
    return BusinessDetails.model_validate(d)


class V230:
    """OCPI 2.3.0."""

    version = "2.3.0"
    # transport_and_format (2.3.0): as 2.2.1, base64 tokens and routing headers.
    raw_token = False
    routing_headers = True
    token_type_in_url = True
    needs_partner_role = False
    embeds_location = False  # Sessions and CDRs name the location, as 2.2.1
    modules = MODULES

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
        model = _MODELS[kind]
        if not isinstance(body, dict):
            model.model_validate(body)  # raises: not an object
            return body
        # Validated as 2.3.0 first: refuses what 2.3.0 refuses (2001).
        (patch_model(model) if patch else model).model_validate(body)
        d: Json = exact_numbers(body)  # a copy, numbers exact
        _convert(kind, d, inward=True)
        return d

    def object_out(
        self, kind: Kind, obj: Json, *, patch: bool, context: EdgeContext | None = None
    ) -> Json:
        d: Json = exact_numbers(obj)
        _convert(kind, d, inward=False)
        out: Json = json_numbers(d)
        return out

    def credentials_in(self, body: Any, partner_role: Role | None) -> Credentials:
        theirs = c230.Credentials.model_validate(body)
        roles = [
            CredentialsRole(
                role=Role(r.role.value),
                business_details=_business_in(r.business_details),
                party_id=r.party_id,
                country_code=r.country_code,
            )
            for r in theirs.roles
        ]
        hub = theirs.hub_party_id
        if hub and not any(r.role is Role.HUB for r in roles):
            # 2.3.0 names a hub in hub_party_id and lists the parties behind
            # it as roles; our model (2.2.1) knows a hub by its HUB role.
            roles.append(
                CredentialsRole(
                    role=Role.HUB,
                    business_details=roles[0].business_details,
                    country_code=hub[:2],
                    party_id=hub[2:],
                )
            )
        return Credentials(token=theirs.token, url=theirs.url, roles=roles)

    def credentials_out(self, ours: Credentials) -> Json:
        data = ours.model_dump(mode="json", exclude_none=True)
        # 2.3.0 has no HUB role: a hub gives its party as hub_party_id.
        hubs = [r for r in ours.roles if r.role is Role.HUB]
        others = [r for r in data["roles"] if r["role"] != Role.HUB.value]
        if hubs and others:
            data["hub_party_id"] = hubs[0].country_code + hubs[0].party_id
            data["roles"] = others
        return data

    def details_in(self, body: Any, partner_role: Role | None) -> VersionDetails:
        # ModuleID is an OpenEnum in 2.3.0; our Endpoint takes any identifier.
        return VersionDetails.model_validate(body)

    def endpoints_out(self, endpoints: list[Endpoint], partner_role: Role | None) -> list[Json]:
        return [e.model_dump(mode="json") for e in endpoints if e.identifier in self.modules]
