"""Routing headers of the functional modules (transport_and_format,
"Message Routing"): ``OCPI-from-country-code``, ``OCPI-from-party-id``,
``OCPI-to-country-code``, ``OCPI-to-party-id``. Never used on versions and
credentials.

We are not a Hub: every request is for us, from one of the caller's roles.
When a partner sends the headers they are checked (a ``from`` that is not one
of the roles the token was registered with, or a ``to`` that is not us, is
refused with 2001 and writes nothing). Peer-to-peer partners often leave them
out, so their absence is accepted and the caller's first role stands in
(docs/adr/0010). Answers always carry them, from and to swapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.auth import RegisteredCallerDep
from api.errors import OcpiError
from producers.partners import PartnerState
from schemas.events import Party
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus

FROM_COUNTRY = "OCPI-from-country-code"
FROM_PARTY = "OCPI-from-party-id"
TO_COUNTRY = "OCPI-to-country-code"
TO_PARTY = "OCPI-to-party-id"


@dataclass(frozen=True)
class RoutedCaller:
    """A registered partner, and which of its parties speaks."""

    partner: PartnerState
    party: Party

    def owns(self, country_code: str, party_id: str) -> bool:
        return self.partner.owns(country_code, party_id)


def _pair(request: Request, country: str, party: str) -> Party | None:
    cc, pid = request.headers.get(country), request.headers.get(party)
    if cc is None and pid is None:
        return None
    if not cc or not pid or len(cc) != 2 or len(pid) != 3:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"{country} and {party} go together: 2 and 3 characters"
        )
    return Party(country_code=fold(cc), party_id=fold(pid))


async def routed_caller(request: Request, found: RegisteredCallerDep) -> RoutedCaller:
    # Settings from the request, not a dependency: every partner request runs this.
    settings = request.app.state.container.settings
    us = Party(country_code=fold(settings.party_country_code), party_id=fold(settings.party_id))
    if not found.wire.routing_headers:
        # OCPI 2.1.1 has no routing headers: its one party speaks, and any
        # such header it sends is not ours to judge (docs/adr/0045).
        first = found.partner.roles[0] if found.partner.roles else None
        speaker = (
            Party(country_code=fold(first.country_code), party_id=fold(first.party_id))
            if first
            else us
        )
        return RoutedCaller(partner=found.partner, party=speaker)
    sender = _pair(request, FROM_COUNTRY, FROM_PARTY)
    receiver = _pair(request, TO_COUNTRY, TO_PARTY)
    roles = [
        Party(country_code=fold(r.country_code), party_id=fold(r.party_id))
        for r in found.partner.roles
    ]
    if sender is not None and sender not in roles:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{FROM_COUNTRY}/{FROM_PARTY} {sender.country_code}/{sender.party_id} "
            "is not a party registered with this token",
        )
    if receiver is not None and receiver != us:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{TO_COUNTRY}/{TO_PARTY} {receiver.country_code}/{receiver.party_id} is not this "
            f"platform ({us.country_code}/{us.party_id}); we do not forward messages",
        )
    party = sender or (roles[0] if roles else us)
    request.state.routing_headers = {
        FROM_COUNTRY: us.country_code,
        FROM_PARTY: us.party_id,
        TO_COUNTRY: party.country_code,
        TO_PARTY: party.party_id,
    }
    return RoutedCaller(partner=found.partner, party=party)


RoutedCallerDep = Annotated[RoutedCaller, Depends(routed_caller)]
