"""Our charge points: the registry (topic ``charger.registry.v1``) and their
connections to the OCPP gateway (topic ``charger.connections.v1``), both keyed
by charge point id (the OCPP identity in the WebSocket URL, case-sensitive).

The registry maps each OCPP connector of a charge point to one connector of
one EVSE of one of our OCPI locations (an OCPP 1.6 connector is what OCPI
calls an EVSE with one connector: mod_commands' note on OCPP 1.x). A charge
point's password is never stored or sent in clear: only its hash.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events.commands import ChargePointId
from schemas.events.envelope import EventMeta
from schemas.events.locations import location_key
from schemas.ocpi.common import CountryCode, PartyId
from schemas.ocpi.types import ci

Ci36 = Annotated[str, ci(36)]


class ConnectorMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ocpp_connector_id: Annotated[int, Field(ge=1)]
    evse_uid: Ci36
    connector_id: Ci36


class ChargePointRegisteredPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charge_point_id: ChargePointId
    country_code: CountryCode
    party_id: PartyId
    location_id: Ci36
    connectors: Annotated[list[ConnectorMapping], Field(min_length=1)]
    # "pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>"; never the password.
    password_hash: Annotated[str, Field(min_length=1, max_length=200)]
    at: AwareDatetime

    @property
    def location_key(self) -> str:
        return location_key(self.country_code, self.party_id, self.location_id)


class ChargePointRegistered(EventMeta):
    """A charge point was registered or its registration replaced (PUT)."""

    event_type: Literal["ChargePointRegistered"] = "ChargePointRegistered"
    schema_version: Literal[1] = 1
    payload: ChargePointRegisteredPayload


class ChargePointDeregisteredPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charge_point_id: ChargePointId
    at: AwareDatetime


class ChargePointDeregistered(EventMeta):
    event_type: Literal["ChargePointDeregistered"] = "ChargePointDeregistered"
    schema_version: Literal[1] = 1
    payload: ChargePointDeregisteredPayload


class ChargePointConnectedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charge_point_id: ChargePointId
    gateway_id: Annotated[str, Field(min_length=1, max_length=100)]
    at: AwareDatetime


class ChargePointConnected(EventMeta):
    event_type: Literal["ChargePointConnected"] = "ChargePointConnected"
    schema_version: Literal[1] = 1
    payload: ChargePointConnectedPayload


class ChargePointDisconnectedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charge_point_id: ChargePointId
    gateway_id: Annotated[str, Field(min_length=1, max_length=100)]
    reason: Annotated[str, Field(max_length=200)] | None = None
    at: AwareDatetime


class ChargePointDisconnected(EventMeta):
    event_type: Literal["ChargePointDisconnected"] = "ChargePointDisconnected"
    schema_version: Literal[1] = 1
    payload: ChargePointDisconnectedPayload


class ChargePointBootedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charge_point_id: ChargePointId
    vendor: Annotated[str, Field(max_length=20)]
    model: Annotated[str, Field(max_length=20)]
    serial_number: Annotated[str, Field(max_length=25)] | None = None
    firmware_version: Annotated[str, Field(max_length=50)] | None = None
    at: AwareDatetime


class ChargePointBooted(EventMeta):
    """BootNotification (OCPP 1.6, 4.2)."""

    event_type: Literal["ChargePointBooted"] = "ChargePointBooted"
    schema_version: Literal[1] = 1
    payload: ChargePointBootedPayload


class ChargePointHeartbeatPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charge_point_id: ChargePointId
    at: AwareDatetime


class ChargePointHeartbeat(EventMeta):
    """Heartbeat (OCPP 1.6, 4.6): the charge point is alive."""

    event_type: Literal["ChargePointHeartbeat"] = "ChargePointHeartbeat"
    schema_version: Literal[1] = 1
    payload: ChargePointHeartbeatPayload


ChargePointEvent = (
    ChargePointRegistered
    | ChargePointDeregistered
    | ChargePointConnected
    | ChargePointDisconnected
    | ChargePointBooted
    | ChargePointHeartbeat
)
