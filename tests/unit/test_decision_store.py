"""The decision store contract against the in-memory fake (the same suite
runs against Redis in tests/integration/test_decision_store.py)."""

import pytest

from producers.decision_store import InMemoryDecisionStore
from tests.decision_store_contract import *  # noqa: F403 - the contract's tests


@pytest.fixture
def store() -> InMemoryDecisionStore:
    return InMemoryDecisionStore(ready=False)


def test_a_rebuild_sends_the_states_in_pipelines_bounded_in_keys_and_bytes() -> None:
    from producers.decision_store import _REBUILD_BYTES, _REBUILD_KEYS, _chunks

    small = [(f"k{i}", (b"x", 0, i)) for i in range(_REBUILD_KEYS + 1)]
    assert [len(c) for c in _chunks(small)] == [_REBUILD_KEYS, 1]
    third = b"y" * (_REBUILD_BYTES // 3 + 1)
    large = [(f"k{i}", (third, 0, i)) for i in range(5)]
    assert [len(c) for c in _chunks(large)] == [2, 2, 1]
    huge = [("k", (b"z" * (_REBUILD_BYTES + 1), 0, 0))]  # alone, never dropped
    assert [len(c) for c in _chunks(huge)] == [1]
