"""Events of the CDRs slice, on topic ``ocpi.cdrs.v1``.

Keyed by the CDR key ``COUNTRY_CODE/PARTY_ID/CDR_ID`` upper-cased (the CPO
that owns the CDR and its id), so every event about one CDR keeps its order.
A CDR is immutable (mod_cdrs, "Credit CDRs"): the first ``CdrIssued`` or
``CdrReceived`` under a key is the CDR; a later one under the same key
changes nothing in any view (the API and the builder never write one). A
correction is a Credit CDR, a CDR of its own with another id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.events.envelope import EventMeta
from schemas.ocpi.common import fold


def cdr_key(country_code: str, party_id: str, cdr_id: str) -> str:
    """Aggregate key of a CDR: the owning CPO party and the id, folded."""
    return "/".join(fold(part) for part in (country_code, party_id, cdr_id))


class CdrRef(BaseModel):
    """The CDR an event is about; identifiers as issued or received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str
    party_id: str
    cdr_id: str

    @property
    def cdr_key(self) -> str:
        return cdr_key(self.country_code, self.party_id, self.cdr_id)


class CdrIssuedPayload(CdrRef):
    """``cdr`` is the complete OCPI 2.2.1 CDR as JSON (it passed
    ``schemas.ocpi.cdrs.Cdr``). ``session_key`` is the session it bills (None
    for a Credit CDR issued by ops); ``tariff_source`` says what priced it:
    ``"tariff"`` (the connector's tariff as it was at session start),
    ``"none"`` (no tariff held: the CDR costs nothing and says so in
    ``remark``) or ``"credit"``."""

    cdr: dict[str, Any]
    session_key: str | None = None
    tariff_source: Literal["tariff", "none", "credit"]


class CdrIssued(EventMeta):
    """We, as CPO, issued a CDR (for one of our completed sessions, or a
    Credit CDR for one of our CDRs). Pushed to the eMSP owning its token."""

    event_type: Literal["CdrIssued"] = "CdrIssued"
    schema_version: Literal[1] = 1
    payload: CdrIssuedPayload


class CdrReceivedPayload(CdrRef):
    """``cdr`` is the partner's CDR as JSON, as received (it passed
    ``schemas.ocpi.cdrs.Cdr``)."""

    cdr: dict[str, Any]


class CdrReceived(EventMeta):
    """A partner CPO POSTed a CDR to our eMSP Receiver interface."""

    event_type: Literal["CdrReceived"] = "CdrReceived"
    schema_version: Literal[1] = 1
    payload: CdrReceivedPayload


class CdrReconciledPayload(CdrRef):
    """Our own price of a received CDR against what the CPO charged.

    ``tariff_source``: ``"held"`` (the CPO's tariff we hold, the
    one the charging periods name), ``"embedded"`` (none held: the tariff the
    CDR carries), ``"none"`` (neither: nothing recomputed, ``expected`` is
    None and no discrepancy is flagged). ``difference`` is charged minus
    expected, excluding VAT; ``discrepancy`` is ``|difference| > tolerance``."""

    tariff_source: Literal["held", "embedded", "none"]
    tariff_id: str | None
    charged_excl_vat: Decimal
    expected_excl_vat: Decimal | None
    difference: Decimal | None
    tolerance: Decimal
    discrepancy: bool
    note: str | None = None


class CdrReconciled(EventMeta):
    """We, as eMSP, recomputed a received CDR's cost."""

    event_type: Literal["CdrReconciled"] = "CdrReconciled"
    schema_version: Literal[1] = 1
    payload: CdrReconciledPayload
