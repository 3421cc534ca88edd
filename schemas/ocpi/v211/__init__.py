"""OCPI 2.1.1 at the edge (docs/adr/0045): the objects as a 2.1.1 partner
sends and expects them (``locations``, ``tokens``, ``credentials``,
``versions``) and the adapter between them and our one model, which is
OCPI 2.2.1-shaped (``adapter``). Spec: ocpi/ocpi, tag 2.1.1-d2."""
