"""One fold per location and batch for the views that hold the same state
(projections/location_folds.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from projections import location_folds
from projections.location_folds import LocationFolds, fold_location
from projections.position import Record
from schemas.ocpi.locations import EvseStatus as S
from tests.ocpi_objects import location
from tests.unit.factories import patch, put, resolved

LATER = "2026-01-01T12:10:00Z"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = location_folds.fold_location

    def counting(*args: Any) -> Any:
        seen.append(1)
        return real(*args)

    monkeypatch.setattr(location_folds, "fold_location", counting)
    return seen


def batch() -> list[Record[object]]:
    return [
        put(location(), offset=1),
        patch({"status": "CHARGING", "last_updated": LATER}, evse_uid="EVSE1", offset=2),
        resolved(S.CHARGING, evse_uid="EVSE1", offset=7),
    ]


def test_the_same_inputs_fold_once_and_both_get_the_result(calls: list[int]) -> None:
    folds = LocationFolds()
    records = batch()
    first = folds.fold(records, "NL/ABC/LOC1", None, {}, records)
    second = folds.fold(records, "NL/ABC/LOC1", None, {}, records)
    assert second is first and len(calls) == 1
    assert first.applied == 3 and first.state_changed
    assert first.served is not None and first.served["evses"][0]["status"] == "CHARGING"
    assert [(r.offset, served) for r, served in first.transitions] == [(1, True)]


def test_a_view_at_another_state_folds_its_own(calls: list[int]) -> None:
    folds = LocationFolds()
    records = batch()
    ahead = fold_location(None, {}, records[:1])
    mine = folds.fold(records, "NL/ABC/LOC1", None, {}, records)
    other = folds.fold(records, "NL/ABC/LOC1", ahead.state.to_json(), ahead.positions, records)
    assert other is not mine and len(calls) == 2
    assert other.applied == 2  # the PUT was applied there already
    assert other.state == mine.state  # and it ends where the other one does


def test_another_batch_is_folded_again(calls: list[int]) -> None:
    folds = LocationFolds()
    one, two = batch(), batch()  # equal records, another batch (list)
    folds.fold(one, "NL/ABC/LOC1", None, {}, one)
    folds.fold(two, "NL/ABC/LOC1", None, {}, two)
    assert len(calls) == 2


def test_concurrent_views_wait_for_the_fold_in_progress(calls: list[int]) -> None:
    folds = LocationFolds()
    records = batch()
    results: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(folds.fold(records, "NL/ABC/LOC1", None, {}, records))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] is results[1] and len(calls) == 1
