"""Push our tokens to every CPO partner (mod_tokens, "Push model": the eMSP
PUTs a new or replaced Token and PATCHes its changes at the CPO's Tokens
Receiver, ``{tokens receiver}/{country_code}/{party_id}/{uid}?type={type}``).

A CPO that holds our tokens can authorize them at its chargers from its own
copy (whitelist ALWAYS / ALLOWED / ALLOWED_OFFLINE) and sees a token
withdrawn (``valid: false``, e.g. a corporation suspended, ADR 0035) when
we change it. The lanes, ordering, retries and at-least-once delivery are
those of ``processors.push`` (ADR 0008), run with ``TOKENS_PUSH``: they read
``ocpi.tokens.v1`` and send to each partner's Tokens RECEIVER endpoint, in
a consumer group of their own per partner, addressed to its CPO role.
Tokens of other eMSPs (those partners pushed to us) are never pushed, nor
our authorization decisions and policies, which are not OCPI objects.
``plan_token`` is pure.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from processors.push import PushModule, PushRequest, is_ours
from schemas.events import Party, TokenPatched, TokenPut
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.versions import ModuleId
from schemas.topics import TOKENS


def plan_token(event: object, us: Party) -> PushRequest | None:
    """The request for one event of ``ocpi.tokens.v1``; None unless it is a
    PUT or PATCH of one of our own tokens."""
    method: Literal["PUT", "PATCH"]
    if isinstance(event, TokenPut):
        method, body = "PUT", event.payload.token
    elif isinstance(event, TokenPatched):
        method, body = "PATCH", event.payload.patch
    else:
        return None
    p = event.payload
    if not is_ours(p.country_code, p.party_id, us):
        return None
    ids = (p.country_code, p.party_id, p.uid)
    return PushRequest(
        method=method,
        # The type tells two tokens of one uid apart (mod_tokens, PUT and
        # PATCH: "type" defaults to RFID when absent, so it is always sent).
        path="".join("/" + quote(i, safe="") for i in ids) + f"?type={p.type.value}",
        body=body,
        object_key="/".join(fold(i) for i in ids) + f"/{p.type.value}",
        last_updated=p.last_updated,
        correlation_id=event.correlation_id,
        event_id=str(event.event_id),
    )


TOKENS_PUSH = PushModule(
    name="tokens",
    module_id=ModuleId.TOKENS.value,
    topic=TOKENS.name,
    event_types=frozenset({"TokenPut", "TokenPatched"}),
    plan=plan_token,
    group_suffix="tokens-",
    ready_event="tokens_push_lane_ready",
    to_role=Role.CPO,
)
