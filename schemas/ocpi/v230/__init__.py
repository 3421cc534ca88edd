"""OCPI 2.3.0 wire objects (tag ``v2.3.0`` of ocpi/ocpi; docs/adr/0046).

Our events hold 2.2.1-shaped objects (``schemas.ocpi``); these models are
what a 2.3.0 partner sends and receives. ``mapping`` turns one into the
other: what 2.2.1 cannot hold is kept in the core object as kept extra
fields (docs/adr/0039), so a 2.3.0 object received is served back whole.
"""
