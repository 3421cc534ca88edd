"""The decision store contract against the in-memory fake (the same suite
runs against Redis in tests/integration/test_decision_store.py)."""

import pytest

from producers.decision_store import InMemoryDecisionStore
from tests.decision_store_contract import *  # noqa: F403 - the contract's tests


@pytest.fixture
def store() -> InMemoryDecisionStore:
    return InMemoryDecisionStore(ready=False)
