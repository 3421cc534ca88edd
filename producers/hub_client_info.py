"""The HubClientInfo slice (mod_hub_client_info; topic
``ocpi.hub-client-info.v1``): what a hub partner reports about each party
behind it, folded per (hub, party). Pure.

**Who may report.** Only a registered partner with the HUB role: the hub is
the data owner of ClientInfo objects. Anyone else is refused (OCPI 2000,
nothing recorded), as a command from a partner without an eMSP role is
(docs/adr/0039). The URL names the party the object is about; a body naming
another party is 2001.

**Stale reports** are recorded, not applied (docs/adr/0004): the fold keeps
the report with the latest ``last_updated`` (among equals, the later in the
log).

**What the push lanes read** (processors/push.py, docs/adr/0044):
``connected_since`` is when we first recorded the party CONNECTED, and stays
so through later OFFLINE/CONNECTED turns: a party lane starts there once and
afterwards resumes where it stood.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from producers.partners import PartnerState
from producers.write_path import Decision, Origin, RefusedError, Slice, recorded_now
from schemas.events import ClientInfoPut, Party
from schemas.events.hub_client_info import ClientInfoPutPayload, client_info_key
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.hub_client_info import ClientInfo, ConnectionStatus
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json
from schemas.topics import HUB_CLIENT_INFO

__all__ = [
    "SLICE",
    "ClientInfoState",
    "decide_put",
    "evolve",
    "is_hub",
    "key_of",
]


class ClientInfoState(BaseModel):
    """One party as one hub reports it. ``country_code``/``party_id``
    folded; ``object`` the ClientInfo served back, as received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hub_partner_id: str
    country_code: str
    party_id: str
    role: Role
    status: ConnectionStatus
    last_updated: datetime
    object: dict[str, Any]
    # When we first recorded this party CONNECTED (None: never yet).
    connected_since: datetime | None = None

    @property
    def party(self) -> Party:
        return Party(country_code=self.country_code, party_id=self.party_id)


def key_of(hub_partner_id: str, country_code: str, party_id: str) -> str:
    return client_info_key(hub_partner_id, country_code, party_id)


def evolve(state: ClientInfoState | None, event: ClientInfoPut) -> ClientInfoState:
    p = event.payload
    if state is not None and p.last_updated < state.last_updated:
        return state  # stale: recorded, not applied
    since = state.connected_since if state is not None else None
    if since is None and p.status is ConnectionStatus.CONNECTED:
        since = event.recorded_at
    return ClientInfoState(
        hub_partner_id=p.hub_partner_id,
        country_code=fold(p.country_code),
        party_id=fold(p.party_id),
        role=p.role,
        status=p.status,
        last_updated=p.last_updated,
        object=p.object,
        connected_since=since,
    )


SLICE: Slice[ClientInfoState] = Slice(
    "hub_client_info",
    HUB_CLIENT_INFO,
    evolve,
    lambda state: state.model_dump_json().encode(),
    ClientInfoState.model_validate_json,
)


def is_hub(partner: PartnerState) -> bool:
    return partner.status == "registered" and any(r.role is Role.HUB for r in partner.roles)


def only_hubs(partner: PartnerState) -> None:
    """mod_hub_client_info: the hub owns ClientInfo objects; a partner
    without the HUB role has none to give us."""
    if not is_hub(partner):
        raise RefusedError(
            OcpiStatus.CLIENT_ERROR,
            "only a partner registered with the HUB role sends ClientInfo",
        )


def decide_put(
    state: ClientInfoState | None,
    *,
    hub: PartnerState,
    country_code: str,
    party_id: str,
    body: Any,
    now: datetime,
    origin: Origin,
) -> Decision[bool]:
    """Record a hub's ClientInfo for the party the URL names; the answer is
    whether it is the first report of that party from this hub."""
    only_hubs(hub)
    info = ClientInfo.model_validate(body)
    if fold(info.country_code) != fold(country_code) or fold(info.party_id) != fold(party_id):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            "invalid or missing parameters: the ClientInfo's country_code and party_id "
            "must be those of the URL",
        )
    key = key_of(hub.partner_id, country_code, party_id)
    event = ClientInfoPut(
        **recorded_now(key, now, origin),
        payload=ClientInfoPutPayload(
            hub_partner_id=hub.partner_id,
            country_code=info.country_code,
            party_id=info.party_id,
            role=info.role,
            status=info.status,
            last_updated=info.last_updated,
            object=to_json(info),
        ),
    )
    return Decision([event], state is None)


def connected(reports: Iterable[ClientInfoState]) -> list[ClientInfoState]:
    """The parties the hubs report CONNECTED now."""
    return [r for r in reports if r.status is ConnectionStatus.CONNECTED]
