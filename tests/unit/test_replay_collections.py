"""How a replay collects young garbage while it holds its batches
(projections/runner.py, docs/adr/0050). The threshold is the interpreter's;
each test restores the one it found."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from projections.runner import young_collections_every


@pytest.fixture
def threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("threshold")
def test_young_collections_are_spaced_for_the_block_only() -> None:
    gc.set_threshold(10_000, 10, 10)
    with young_collections_every(1_200_000):
        assert gc.get_threshold() == (1_200_000, 10, 10)
    assert gc.get_threshold() == (10_000, 10, 10)
    with pytest.raises(KeyError), young_collections_every(1_200_000):
        raise KeyError
    assert gc.get_threshold() == (10_000, 10, 10)


@pytest.mark.usefixtures("threshold")
def test_a_higher_threshold_or_a_disabled_collector_is_left_alone() -> None:
    for start in ((2_000_000, 10, 10), (0, 10, 10)):
        gc.set_threshold(*start)
        with young_collections_every(1_200_000):
            assert gc.get_threshold() == start
        assert gc.get_threshold() == start
