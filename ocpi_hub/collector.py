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

A replay holds far more at once: the batch it writes and the one it reads
meanwhile, about a million container objects at its default batch size.
Each young collection in between walks some of them, and every later one
walks the survivors again, for no garbage: in a replay of a million events
the collector took about a third of the CPU. ``holding`` raises the young
threshold to what such code holds while it runs (measured, same machine:
89 -> 66 and 72 µs of CPU per event in two runs, the same peak RSS).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

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


# Container objects a decoded event keeps alive (its pydantic models with
# their dicts and lists, 9.5 measured on the replay benchmark's events; its
# Record and the Kafka message it came from).
OBJECTS_PER_EVENT = 12


@contextlib.contextmanager
def holding(objects: int) -> Iterator[None]:
    """Run young collections only every ``objects`` net allocations while
    the block runs (for code that holds about that many container objects
    at a time, and frees them whole), then restore the threshold. A lower
    threshold is raised, never a higher one lowered; a disabled collector
    (threshold 0) stays disabled."""
    young, older, oldest = gc.get_threshold()
    if young == 0 or young >= objects:
        yield
        return
    gc.set_threshold(objects, older, oldest)
    try:
        yield
    finally:
        gc.set_threshold(young, older, oldest)
