"""Events of the HubClientInfo slice, on topic ``ocpi.hub-client-info.v1``.

A hub partner tells us which parties behind it are reachable
(mod_hub_client_info). One aggregate per (hub partner, party): the same
party may be reported by two hubs, each for its own route. Keyed by
``HUB_PARTNER_ID/COUNTRY_CODE/PARTY_ID`` (party folded), so every report
about one party from one hub keeps its order.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events.envelope import EventMeta
from schemas.ocpi.common import DateTime, fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.hub_client_info import ConnectionStatus


def client_info_key(hub_partner_id: str, country_code: str, party_id: str) -> str:
    """Aggregate key: the hub (our partner id, as we named it) and the party
    it reports, folded (CiString)."""
    return f"{hub_partner_id}/{fold(country_code)}/{fold(party_id)}"


class ClientInfoPutPayload(BaseModel):
    """``object`` is the ClientInfo as the hub sent it (unknown fields kept,
    docs/adr/0039); the fields beside it are what readers select on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hub_partner_id: str = Field(min_length=1, max_length=40)
    country_code: str
    party_id: str
    role: Role
    status: ConnectionStatus
    last_updated: DateTime
    object: dict[str, Any]


class ClientInfoPut(EventMeta):
    """A hub reported a party's connection status (OCPI PUT of a ClientInfo)."""

    event_type: Literal["ClientInfoPut"] = "ClientInfoPut"
    schema_version: Literal[1] = 1
    payload: ClientInfoPutPayload
