"""The charge point registry slice (topic ``charger.registry.v1``): which
OCPP charge point is which connectors of which of our locations, and the
password it authenticates with (OCPP 1.6 security profile 1, HTTP Basic).
Pure: its state, its fold and its decisions.

``decide_register`` judges an ops PUT against the location the write path
holds: the location, every EVSE and every connector must be ours (else
2003), the body well-formed (else 2001). The password is kept only as a
salted PBKDF2-SHA256 hash (``hash_password``/``verify_password``,
docs/adr/0018 for the cost). The registry view (projections/mongo/
charge_points.py) is this slice's state with its log positions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from producers.write_path import Decision, Origin, RefusedError, Slice
from schemas.events import ChargePointDeregistered, ChargePointRegistered, new_event_id
from schemas.events.charge_points import (
    ChargePointDeregisteredPayload,
    ChargePointRegisteredPayload,
    ConnectorMapping,
)
from schemas.ocpi import merge
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import ci
from schemas.topics import CHARGER_REGISTRY

# docs/adr/0018: about 25 ms of one core per verification on our hardware,
# so a gateway restart that makes 1000 chargers reconnect costs ~25 s of CPU
# once (verifications are then cached in memory), while an offline guess
# against a hash read from the log costs the same 25 ms.
PBKDF2_ITERATIONS = 100_000
_SCHEME = "pbkdf2_sha256"


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`` of a password."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return "$".join((_SCHEME, str(iterations), b64(salt).decode(), b64(digest).decode()))


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` is the one ``encoded`` was made from (constant time;
    a malformed hash verifies nothing)."""
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        if scheme != _SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt, validate=True), int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _printable(value: str) -> str:
    # OCPP 1.6 security: the AuthorizationKey travels in a Basic header, so
    # printable ASCII only (no ':' issue: the user part is the cp id).
    if not all(0x20 < ord(ch) < 0x7F for ch in value):
        raise ValueError("the password must be printable ASCII without spaces")
    return value


class RegisterBody(BaseModel):
    """``PUT /ops/charge-points/{charge_point_id}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location_id: Annotated[str, ci(36)]
    password: Annotated[str, Field(min_length=8, max_length=64)]
    connectors: Annotated[list[ConnectorMapping], Field(min_length=1)]

    _check_password = field_validator("password")(_printable)

    @field_validator("connectors")
    @classmethod
    def _distinct(cls, value: list[ConnectorMapping]) -> list[ConnectorMapping]:
        ids = [c.ocpp_connector_id for c in value]
        if len(set(ids)) != len(ids):
            raise ValueError("each ocpp_connector_id may appear once")
        pairs = [(c.evse_uid.upper(), c.connector_id.upper()) for c in value]
        if len(set(pairs)) != len(pairs):
            raise ValueError("each EVSE connector may be mapped once")
        return value


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts)


def parse_register(body: Any) -> RegisterBody:
    """The body, or RefusedError 2001 (never echoing the password)."""
    if not isinstance(body, dict):
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "the body must be a JSON object")
    try:
        return RegisterBody.model_validate(body)
    except ValidationError as exc:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, _describe(exc)) from exc


def plan_register(
    charge_point_id: str,
    body: RegisterBody,
    location: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
    *,
    password_hash: str,
) -> ChargePointRegistered:
    """``location`` is the Location we (``origin``) hold under ``body.location_id``."""
    if location is None:
        raise RefusedError(OcpiStatus.UNKNOWN_LOCATION, f"unknown location {body.location_id!r}")
    for c in body.connectors:
        if merge.find_evse(location, c.evse_uid) is None:
            raise RefusedError(OcpiStatus.UNKNOWN_LOCATION, f"unknown EVSE {c.evse_uid!r}")
        if merge.find_connector(location, c.evse_uid, c.connector_id) is None:
            raise RefusedError(
                OcpiStatus.UNKNOWN_LOCATION,
                f"unknown connector {c.connector_id!r} of EVSE {c.evse_uid!r}",
            )
    payload = ChargePointRegisteredPayload(
        charge_point_id=charge_point_id,
        country_code=origin.source.country_code,
        party_id=origin.source.party_id,
        location_id=body.location_id,
        connectors=body.connectors,
        password_hash=password_hash,
        at=now,
    )
    return ChargePointRegistered(
        event_id=new_event_id(),
        aggregate_key=charge_point_id,
        occurred_at=now,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=payload,
    )


def plan_deregister(
    charge_point_id: str, registered: bool, origin: Origin, now: datetime
) -> ChargePointDeregistered:
    if not registered:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS, f"unknown charge point {charge_point_id!r}", 404
        )
    return ChargePointDeregistered(
        event_id=new_event_id(),
        aggregate_key=charge_point_id,
        occurred_at=now,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=ChargePointDeregisteredPayload(charge_point_id=charge_point_id, at=now),
    )


# The identity in ``/ocpp/{id}`` and the Basic auth user: no ':' (it ends the
# user part) and nothing that needs escaping in a URL path.
CHARGE_POINT_ID_PATTERN = r"^[A-Za-z0-9._\-]{1,48}$"


# --- state and fold ---------------------------------------------------------------


class ChargePointState(BaseModel):
    """A charge point's registration as its events leave it. Charge point
    ids are case-sensitive (the OCPP identity); identifiers of the location
    keep the case they were given, the ``*_key`` fields are folded."""

    model_config = ConfigDict(frozen=True)

    charge_point_id: str
    country_code: str
    party_id: str
    location_id: str
    location_key: str
    registered: bool
    connectors: list[dict[str, Any]]
    password_hash: str
    registered_at: datetime
    updated_at: datetime


def evolve(
    state: ChargePointState | None, event: ChargePointRegistered | ChargePointDeregistered
) -> ChargePointState | None:
    if isinstance(event, ChargePointDeregistered):
        if state is None:
            return None
        return state.model_copy(update={"registered": False, "updated_at": event.payload.at})
    p = event.payload
    return ChargePointState(
        charge_point_id=p.charge_point_id,
        country_code=fold(p.country_code),
        party_id=fold(p.party_id),
        location_id=p.location_id,
        location_key=p.location_key,
        registered=True,
        connectors=[
            {
                "ocpp_connector_id": c.ocpp_connector_id,
                "evse_uid": c.evse_uid,
                "connector_id": c.connector_id,
                "evse_key": fold(c.evse_uid),
                "connector_key": fold(c.connector_id),
            }
            for c in p.connectors
        ],
        password_hash=p.password_hash,
        registered_at=state.registered_at if state is not None else p.at,
        updated_at=p.at,
    )


SLICE: Slice[ChargePointState] = Slice(
    "charge_points",
    CHARGER_REGISTRY,
    evolve,
    lambda state: state.model_dump_json().encode(),
    ChargePointState.model_validate_json,
)


def decide_register(
    state: ChargePointState | None,
    charge_point_id: str,
    body: RegisterBody,
    location: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
    *,
    password_hash: str,
) -> Decision[bool]:
    """Register (or re-register) a charge point; the answer says whether it
    was not registered before (HTTP 201 rather than 200)."""
    event = plan_register(charge_point_id, body, location, origin, now, password_hash=password_hash)
    return Decision([event], not (state is not None and state.registered))


def decide_deregister(
    state: ChargePointState | None, charge_point_id: str, origin: Origin, now: datetime
) -> Decision[None]:
    registered = state is not None and state.registered
    return Decision([plan_deregister(charge_point_id, registered, origin, now)], None)
