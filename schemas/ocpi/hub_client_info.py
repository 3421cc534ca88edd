"""HubClientInfo module (mod_hub_client_info): what a hub tells a connected
platform about the parties behind it."""

from __future__ import annotations

from enum import StrEnum

from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.credentials import Role


class ConnectionStatus(StrEnum):
    """mod_hub_client_info, ConnectionStatus enum."""

    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


class ClientInfo(OcpiModel):
    """ClientInfo object: one party connected to the hub, as the hub sees it.
    Owned by the hub; never deleted (a party that is gone is SUSPENDED)."""

    party_id: PartyId
    country_code: CountryCode
    role: Role
    status: ConnectionStatus
    last_updated: DateTime
