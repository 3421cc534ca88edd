"""Push our CDRs to the eMSP that owns each CDR's token (mod_cdrs, "Push
model": the CPO POSTs a new CDR to the eMSP's CDRs Receiver endpoint).

The lanes, ordering, retries with backoff and at-least-once delivery are
those of ``processors.push`` (ADR 0008), run with ``CDRS_PUSH``: they read
``ocpi.cdrs.v1`` and POST each ``CdrIssued`` of ours (Credit CDRs included)
to the Cdrs RECEIVER endpoint of the partner whose party is the CDR's
``cdr_token`` party, in a consumer group of their own per partner. CDRs we
received from partners are never pushed.

Idempotent by CDR id: a CDR is POSTed once per ``CdrIssued``, and a POST
sent again after a crash meets a receiver that already holds that id. A
receiver of this platform answers 2001 (duplicate; nothing written), which
the lane counts as refused and moves past, the CDR being there already.
``plan_cdr`` is pure.
"""

from __future__ import annotations

from processors.push import PushModule, PushRequest, is_ours
from schemas.events import CdrIssued, Party
from schemas.ocpi.common import fold, parse_ocpi_datetime
from schemas.ocpi.versions import ModuleId
from schemas.topics import CDRS


def plan_cdr(event: object, us: Party) -> PushRequest | None:
    """The POST for one event of ``ocpi.cdrs.v1``; None unless it is a CDR
    we issued that names its token's eMSP."""
    if not isinstance(event, CdrIssued):
        return None
    p = event.payload
    if not is_ours(p.country_code, p.party_id, us):
        return None
    token = p.cdr.get("cdr_token")
    if not isinstance(token, dict):
        return None
    return PushRequest(
        method="POST",
        path="",
        body=p.cdr,
        object_key=p.cdr_key,
        last_updated=parse_ocpi_datetime(p.cdr["last_updated"]),
        correlation_id=event.correlation_id,
        event_id=str(event.event_id),
        audience=Party(
            country_code=fold(str(token["country_code"])), party_id=fold(str(token["party_id"]))
        ),
    )


CDRS_PUSH = PushModule(
    name="cdrs",
    module_id=ModuleId.CDRS.value,
    topic=CDRS.name,
    event_types=frozenset({"CdrIssued"}),
    plan=plan_cdr,
    group_suffix="cdrs-",
    ready_event="cdrs_push_lane_ready",
)
