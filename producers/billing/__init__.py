"""The billing slice (issue 14): corporate customers, their members,
charges, monthly invoices, credit notes and their e-mails, decided on one
aggregate per corporation (docs/adr/0035, 1). One module per concern:

* ``state``: the aggregate's state (models only);
* ``aggregate``: the one ``evolve`` and the write path's ``SLICE``;
* ``corporations``: registration, identifiers, status;
* ``members``: invitations, activation links, members' tokens;
* ``charges``: CDRs priced into charges, and their reversals;
* ``invoices``: draft, issue, paid, void, and the invoices' sources;
* ``credit_notes``: request, approve, reject, issue;
* ``mailings``: an invoice's or a credit note's e-mail, recorded once.

Import each name from its module; this package re-exports nothing.
"""
