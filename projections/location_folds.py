"""One fold of a batch's events per location, for every view that holds it.

The MongoDB location view and the MySQL hierarchy keep the same folded state
of each location (``producers.locations``), each beside its own position guard, and
the runner hands both the same batch at the same time. Folding a location's
records (``evolve``: a deep copy of the location per PATCH) and deriving the
served Location (``served``: another one) is most of their CPU, so
``LocationFolds`` lets the second view take the first one's result: per batch
(the very list the runner hands every writer) and per location key, the fold
is computed once, and handed out only to a caller that starts from the equal
state and positions. A view that is behind or ahead of the other (a failed
batch, a zombie writer) simply folds its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from producers.locations import LocationState, evolve, served
from projections.position import Record, already_applied

Json = dict[str, Any]


@dataclass
class LocationFold:
    """One location's records folded into a stored state."""

    state: LocationState
    positions: dict[str, int]
    applied: int
    state_changed: bool
    # Records after which the location is served / no longer served.
    transitions: list[tuple[Record[object], bool]] = field(default_factory=list)
    _served: Json | None = None
    _served_done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def served(self) -> Json | None:
        """The Location served after the fold, derived once."""
        with self._lock:
            if not self._served_done:
                self._served = served(self.state)
                self._served_done = True
            return self._served


def fold_location(
    state_json: Mapping[str, Any] | None,
    positions: Mapping[str, int],
    records: Sequence[Record[object]],
    step: Callable[[LocationState, LocationState], None] | None = None,
) -> LocationFold:
    """Fold one location's records (in log order) into a stored state,
    skipping those at or below the stored positions; ``step``, when given,
    sees the state before and after each record applied (a view that
    watches the fold for its own transitions folds once)."""
    before = LocationState.from_json(state_json)
    state = before
    now_positions = dict(positions)
    applied = 0
    transitions: list[tuple[Record[object], bool]] = []
    for rec in records:
        if already_applied(now_positions, rec):
            continue
        after = evolve(state, rec.event)
        if step is not None:
            step(state, after)
        if (after.asserted is None) != (state.asserted is None):
            transitions.append((rec, after.asserted is not None))
        state = after
        now_positions[rec.position_field] = rec.offset
        applied += 1
    return LocationFold(
        state=state,
        positions=now_positions,
        applied=applied,
        state_changed=state.to_json() != before.to_json(),
        transitions=transitions,
    )


@dataclass
class _Entry:
    done: threading.Event = field(default_factory=threading.Event)
    inputs: tuple[Any, dict[str, int]] | None = None
    result: LocationFold | None = None


class _BatchFolds:
    def __init__(self, batch: Sequence[Record[object]]) -> None:
        self.batch = batch
        self.lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}


class LocationFolds:
    """Folds shared by the location views of one process (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # The batch being applied and the one before it: the runner applies
        # one batch at a time, so no writer needs an older one.
        self._batches: list[_BatchFolds] = []

    def fold(
        self,
        batch: Sequence[Record[object]],
        key: str,
        state_json: Mapping[str, Any] | None,
        positions: Mapping[str, int],
        records: Sequence[Record[object]],
    ) -> LocationFold:
        """``fold_location`` of ``records`` (the records of ``key`` in
        ``batch``), computed once per batch for equal inputs."""
        memo = self._memo(batch)
        inputs = (state_json, dict(positions))
        with memo.lock:
            entry = memo.entries.get(key)
            mine = entry is None
            if entry is None:
                entry = memo.entries[key] = _Entry()
        if mine:
            try:
                entry.result = fold_location(state_json, positions, records)
                entry.inputs = inputs
            finally:
                entry.done.set()
            return entry.result
        entry.done.wait()
        if entry.result is not None and entry.inputs == inputs:
            return entry.result
        return fold_location(state_json, positions, records)

    def _memo(self, batch: Sequence[Record[object]]) -> _BatchFolds:
        with self._lock:
            for memo in self._batches:
                if memo.batch is batch:
                    return memo
            memo = _BatchFolds(batch)
            self._batches = [*self._batches[-1:], memo]
            return memo
