from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from schemas.ocpi.common import DateTime, format_ocpi_datetime, parse_ocpi_datetime


class Stamped(BaseModel):
    at: DateTime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-10-27T01:58:33Z", datetime(2024, 10, 27, 1, 58, 33, tzinfo=UTC)),
        ("2024-10-27T01:58:33", datetime(2024, 10, 27, 1, 58, 33, tzinfo=UTC)),  # UTC implied
        ("2024-10-27T01:58:33.4321Z", datetime(2024, 10, 27, 1, 58, 33, 432000, tzinfo=UTC)),
    ],
)
def test_accepts_rfc3339_utc(text: str, expected: datetime) -> None:
    assert parse_ocpi_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-10-27T01:58:33+02:00",  # not UTC
        "2024-10-27T01:58:33+00:00",  # an explicit +00:00 offset is not the UTC "Z" form
        "2024-10-27 01:58:33Z",  # not RFC 3339
        "2024-10-27T01:58:33.654321Z",  # 27 characters > string(25)
        "yesterday",
        "",
    ],
)
def test_refuses_other_forms(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ocpi_datetime(text)


def test_serializes_back_to_the_same_text() -> None:
    for text in ("2024-10-27T01:58:33Z", "2024-10-27T01:58:33.120Z"):
        assert Stamped.model_validate({"at": text}).model_dump(mode="json") == {"at": text}
    assert format_ocpi_datetime(datetime(2020, 1, 1, tzinfo=UTC)) == "2020-01-01T00:00:00Z"
