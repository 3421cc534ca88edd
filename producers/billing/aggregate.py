"""The corporation aggregate as the write path (docs/adr/0022) sees it: the
one ``evolve``, which hands each event to the concern that folds it, and
``SLICE``, where its events go and how its state is stored. ``evolve`` is
the fold for the write path and for the MySQL rows
(projections/mysql/billing.py) alike.
"""

from __future__ import annotations

from producers.billing.charges import ChargeEvents, evolve_charge
from producers.billing.corporations import CorporationEvents, evolve_corporation
from producers.billing.credit_notes import CreditNoteEvents, evolve_credit_note
from producers.billing.invoices import InvoiceEvents, evolve_invoice
from producers.billing.mailings import evolve_mailing
from producers.billing.members import MemberEvents, evolve_member
from producers.billing.state import CorporationState
from producers.write_path import Slice
from schemas.events.billing import BillingEvent
from schemas.topics import BILLING_CORPORATIONS


def evolve(state: CorporationState | None, event: BillingEvent) -> CorporationState | None:
    """Fold one event: each concern folds its own. Events of a corporation
    the log does not hold (it cannot happen through ``decide_*``) change
    nothing."""
    if isinstance(event, CorporationEvents):
        return evolve_corporation(state, event)
    if state is None:
        return None
    if isinstance(event, MemberEvents):
        return evolve_member(state, event)
    if isinstance(event, ChargeEvents):
        return evolve_charge(state, event)
    if isinstance(event, InvoiceEvents):
        return evolve_invoice(state, event)
    if isinstance(event, CreditNoteEvents):
        return evolve_credit_note(state, event)
    return evolve_mailing(state, event)


SLICE: Slice[CorporationState] = Slice(
    # v2: the state gained the charges' details and the invoices (docs/adr/0036);
    # v3: the invoices' sources and mailings (docs/adr/0040); v4: the invoices'
    # VAT rate and the credit notes (docs/adr/0041); v5: what an issued credit
    # note's files need besides (its VAT roundings). A new name makes every
    # decision store rebuild it from the log once.
    "billing_corporations_v5",
    BILLING_CORPORATIONS,
    evolve,
    lambda state: state.model_dump_json().encode(),
    CorporationState.model_validate_json,
)
