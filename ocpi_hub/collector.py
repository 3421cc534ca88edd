"""The cyclic garbage collector, tuned once per process (docs/adr/0050).

CPython runs a young collection after every 700 net allocations of
container objects. Our processes allocate many short-lived containers per
event (a decoded event is a few pydantic models; a fold copies dicts) while
holding many long-lived ones (the modules, the write path's states, a
projection batch), and each young collection walks what survived the ones
before. Measured on the project's machine (2 cores): decoding a replay's
location events cost 40 µs each with the default and 19 µs with a young
threshold of 10,000; a 100,000-event replay went from 139 to 104 µs of CPU
per event. Almost everything we free goes by reference counting, so
collecting cycles less often costs little memory.

A replay holds far more at once and raises the threshold further while it
runs (``projections.runner.young_collections_every``).
"""

from __future__ import annotations

import gc

_tuned = False


def tune(young_threshold: int) -> None:
    """Move what the process holds after its start (modules, schemas,
    settings) out of the collector's reach and collect the young generation
    after ``young_threshold`` allocations instead of 700; 0 leaves Python's
    defaults. Only the first call of a process does anything."""
    global _tuned
    if _tuned or young_threshold <= 0:
        return
    _tuned = True
    _, older, oldest = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, older, oldest)
