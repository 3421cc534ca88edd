"""What a partner's Session or CDR is judged against besides its own
aggregate, read from the write path's log-consistent states (never a view):
the token it bills, and for a CDR the tariffs it names and its location's
time zone. Shared by the receivers (api/ocpi/sessions.py, api/ocpi/cdrs.py)
and the pull syncs (producers/pull_sync.py), so an object pulled is judged
exactly as the same object pushed to us.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from producers import locations, tariffs, tokens
from producers.cdrs import ReceiveCdr, tariffs_named
from producers.sessions import Billing, PatchSession, PutSession, billed_token
from producers.write_path import Origin, WritePath
from schemas.events import Party
from schemas.events.locations import location_key
from schemas.events.tariffs import tariff_key
from schemas.events.tokens import token_key
from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.common import fold

Json = dict[str, object]


async def session_billing(
    w: WritePath, command: PutSession | PatchSession, us: Party
) -> Billing | None:
    """The token a session write names, as the Tokens slice holds it
    (``producers.sessions.decide`` accepts only tokens we issued); None when
    the write names none (a PATCH)."""
    named = billed_token(command)
    if named is None:
        return None
    token = await w.state(tokens.SLICE, named.key)
    return Billing(us, token)


async def _token_issued(w: WritePath, cdr: Cdr) -> bool:
    token = cdr.cdr_token
    state = await w.state(
        tokens.SLICE, token_key(token.country_code, token.party_id, token.uid, token.type)
    )
    return state is not None and state.token is not None


async def _tariff(w: WritePath, cdr: Cdr, tariff_id: str) -> dict[str, object] | None:
    key = tariff_key(cdr.country_code, cdr.party_id, tariff_id)
    state: tariffs.TariffState | None = await w.state(tariffs.SLICE, key)
    return tariffs.held_at(state, cdr.start_date_time)


async def _tariffs(w: WritePath, cdr: Cdr) -> dict[str, dict[str, object] | None]:
    ids = sorted(tariffs_named(cdr))
    held = await asyncio.gather(*(_tariff(w, cdr, i) for i in ids))
    return {fold(i): tariff for i, tariff in zip(ids, held, strict=True)}


async def _time_zone(w: WritePath, cdr: Cdr) -> str | None:
    key = location_key(cdr.country_code, cdr.party_id, cdr.cdr_location.id)
    state: locations.LocationState | None = await w.state(locations.SLICE, key)
    where = locations.asserted(state)
    return None if where is None else where.get("time_zone")


async def cdr_receipt(
    w: WritePath,
    cdr: Cdr,
    *,
    poster_owns: Callable[[str, str], bool],
    us: Party,
    tolerance: Decimal,
    correlation_id: str,
) -> ReceiveCdr:
    """A partner's CDR with what it is judged and reconciled against."""
    token_issued, held, time_zone = await asyncio.gather(
        _token_issued(w, cdr), _tariffs(w, cdr), _time_zone(w, cdr)
    )
    return ReceiveCdr(
        cdr=cdr,
        poster_owns=poster_owns,
        us=us,
        token_issued=token_issued,
        tariffs=held,
        time_zone=time_zone,
        tolerance=tolerance,
        origin=Origin(
            Party(country_code=fold(cdr.country_code), party_id=fold(cdr.party_id)),
            correlation_id,
        ),
    )
