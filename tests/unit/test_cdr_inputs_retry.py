"""The CDR builder's reads of the history views wait out a MongoDB that is
away (issue 12: a lost connection must not crash the processors), and only
that: any other error still fails the read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, NetworkTimeout, OperationFailure
from structlog.testing import capture_logs

from processors.cdr_builder import MongoCdrInputs

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def as_of(
        self, country_code: str, party_id: str, object_id: str, at: datetime, /
    ) -> dict[str, Any] | None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"id": object_id}


async def test_a_lost_connection_or_timeout_is_read_again_with_backoff() -> None:
    locations = Flaky([AutoReconnect("connection reset"), NetworkTimeout("timed out")])
    inputs = MongoCdrInputs(locations, Flaky([]), retry_initial_s=0.01, retry_max_s=0.02)
    with capture_logs() as logs:
        found = await inputs.location_as_of("NL", "ABC", "LOC1", AT)
    assert found == {"id": "LOC1"}
    assert locations.calls == 3
    waits = [e for e in logs if e["event"] == "cdr_inputs_unavailable"]
    assert [(e["error_type"], e["retry_in_s"]) for e in waits] == [
        ("AutoReconnect", 0.01),
        ("NetworkTimeout", 0.02),
    ]


async def test_another_error_is_not_retried() -> None:
    tariffs = Flaky([OperationFailure("bad query", code=2)])
    inputs = MongoCdrInputs(Flaky([]), tariffs, retry_initial_s=0.01, retry_max_s=0.02)
    with pytest.raises(OperationFailure):
        await inputs.tariff_as_of("NL", "ABC", "T1", AT)
    assert tariffs.calls == 1
