"""Charger facts (charger.transactions.v1) for tests of the session lifecycle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from schemas.events import (
    MeterValuesSampled,
    Party,
    ReservationEnded,
    ReservationMade,
    TransactionAuthorized,
    TransactionStarted,
    TransactionStopped,
)
from schemas.events.chargers import (
    MeterValuesSampledPayload,
    ReservationEndedPayload,
    ReservationMadePayload,
    TokenIdentity,
    TransactionAuthorizedPayload,
    TransactionStartedPayload,
    TransactionStoppedPayload,
)
from schemas.ocpi.sessions import AuthMethod
from schemas.ocpi.types import TokenType

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
TOKEN = TokenIdentity(
    uid="RFID-7", type=TokenType.RFID, country_code="NL", party_id="PEE", contract_id="NL-PEE-7"
)


def _ids(session_id: str, transaction_id: str) -> dict[str, Any]:
    return {
        "country_code": "ZZ",
        "party_id": "HUB",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": session_id,
        "transaction_id": transaction_id,
    }


def _meta(minute: float, event_id: uuid.UUID | None) -> dict[str, Any]:
    return {
        "event_id": event_id or uuid.uuid4(),
        "aggregate_key": "ZZ/HUB/LOC1",
        "occurred_at": T0 + timedelta(minutes=minute),
        "recorded_at": T0,
        "source": Party(country_code="ZZ", party_id="HUB"),
        "correlation_id": "c",
    }


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def started(
    minute: float = 0,
    wh: int | str = 1000,
    *,
    authorized: bool = True,
    session_id: str = "S1",
    tx: str = "T1",
    event_id: uuid.UUID | None = None,
) -> TransactionStarted:
    return TransactionStarted(
        **_meta(minute, event_id),
        payload=TransactionStartedPayload(
            **_ids(session_id, tx),
            token=TOKEN,
            authorized=authorized,
            auth_method=AuthMethod.WHITELIST,
            meter_start_wh=Decimal(wh),
            at=at(minute),
        ),
    )


def authorized(minute: float, *, session_id: str = "S1", tx: str = "T1") -> TransactionAuthorized:
    return TransactionAuthorized(
        **_meta(minute, None),
        payload=TransactionAuthorizedPayload(
            **_ids(session_id, tx),
            auth_method=AuthMethod.AUTH_REQUEST,
            authorization_reference="AUTH-1",
            at=at(minute),
        ),
    )


def meter(
    minute: float,
    wh: int | str,
    *,
    session_id: str = "S1",
    tx: str = "T1",
    event_id: uuid.UUID | None = None,
) -> MeterValuesSampled:
    return MeterValuesSampled(
        **_meta(minute, event_id),
        payload=MeterValuesSampledPayload(
            **_ids(session_id, tx), meter_wh=Decimal(wh), at=at(minute)
        ),
    )


def stopped(
    minute: float, wh: int | str, *, session_id: str = "S1", tx: str = "T1"
) -> TransactionStopped:
    return TransactionStopped(
        **_meta(minute, None),
        payload=TransactionStoppedPayload(
            **_ids(session_id, tx),
            meter_stop_wh=Decimal(wh),
            at=at(minute),
            reason="EVDisconnected",
        ),
    )


def _reservation_ids(session_id: str, evse_uid: str, connector_id: str) -> dict[str, Any]:
    return {
        "country_code": "ZZ",
        "party_id": "HUB",
        "location_id": "LOC1",
        "evse_uid": evse_uid,
        "connector_id": connector_id,
        "session_id": session_id,
        "reservation_id": "R1",
    }


def reserved(
    minute: float,
    *,
    session_id: str = "S1",
    evse_uid: str = "#NA",
    connector_id: str = "#NA",
    expires_after: float = 30,
    event_id: uuid.UUID | None = None,
) -> ReservationMade:
    return ReservationMade(
        **_meta(minute, event_id),
        payload=ReservationMadePayload(
            **_reservation_ids(session_id, evse_uid, connector_id),
            token=TOKEN,
            authorization_reference="RES-1",
            expires_at=at(minute + expires_after),
            at=at(minute),
        ),
    )


def reservation_ended(
    minute: float,
    *,
    session_id: str = "S1",
    reason: Literal["EXPIRED", "CANCELLED"] = "EXPIRED",
    evse_uid: str = "#NA",
    connector_id: str = "#NA",
) -> ReservationEnded:
    return ReservationEnded(
        **_meta(minute, None),
        payload=ReservationEndedPayload(
            **_reservation_ids(session_id, evse_uid, connector_id), reason=reason, at=at(minute)
        ),
    )
