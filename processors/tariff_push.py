"""Push our tariffs to every eMSP partner (mod_tariffs, "Push model": the
CPO PUTs a new or replaced Tariff and DELETEs a withdrawn one at the eMSP's
Tariffs Receiver, ``{tariffs receiver}/{country_code}/{party_id}/{tariff_id}``).

An eMSP shows our prices to its drivers and reconciles our CDRs against the
tariff it holds, so it needs each version as we publish it. The lanes,
ordering, retries and at-least-once delivery are those of
``processors.push`` (ADR 0008), run with ``TARIFFS_PUSH``: they read
``ocpi.tariffs.v1`` and send to each partner's Tariffs RECEIVER endpoint, in
a consumer group of their own per partner. Tariffs of other CPOs are never
pushed. ``plan_tariff`` is pure.
"""

from __future__ import annotations

from urllib.parse import quote

from processors.push import PushModule, PushRequest, is_ours
from schemas.events import Party, TariffDeleted, TariffPut
from schemas.ocpi.common import fold
from schemas.ocpi.versions import ModuleId
from schemas.topics import TARIFFS


def plan_tariff(event: object, us: Party) -> PushRequest | None:
    """The request for one event of ``ocpi.tariffs.v1``; None unless it is a
    PUT or DELETE of one of our own tariffs."""
    if not isinstance(event, TariffPut | TariffDeleted):
        return None
    p = event.payload
    if not is_ours(p.country_code, p.party_id, us):
        return None
    ids = (p.country_code, p.party_id, p.tariff_id)
    return PushRequest(
        method="PUT" if isinstance(event, TariffPut) else "DELETE",
        path="".join("/" + quote(i, safe="") for i in ids),
        body=event.payload.object if isinstance(event, TariffPut) else None,
        object_key="/".join(fold(i) for i in ids),
        last_updated=p.last_updated,
        correlation_id=event.correlation_id,
        event_id=str(event.event_id),
    )


TARIFFS_PUSH = PushModule(
    name="tariffs",
    module_id=ModuleId.TARIFFS.value,
    topic=TARIFFS.name,
    event_types=frozenset({"TariffPut", "TariffDeleted"}),
    plan=plan_tariff,
    group_suffix="tariffs-",
    ready_event="tariffs_push_lane_ready",
)
