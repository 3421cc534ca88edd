from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from schemas.ocpi.common import DateTime, format_ocpi_datetime, parse_ocpi_datetime


class Stamped(BaseModel):
    at: DateTime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-06-29T20:39:09Z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T20:39:09", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),  # UTC implied
        ("2015-06-29T20:39:09.1234Z", datetime(2015, 6, 29, 20, 39, 9, 123000, tzinfo=UTC)),
    ],
)
def test_accepts_rfc3339_utc(text: str, expected: datetime) -> None:
    assert parse_ocpi_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2015-06-29T20:39:09+02:00",  # not UTC
        "2015-06-29T20:39:09+00:00",  # "+00:00 is not the same as UTC"
        "2015-06-29 20:39:09Z",  # not RFC 3339
        "2015-06-29T20:39:09.123456Z",  # 27 characters > string(25)
        "yesterday",
        "",
    ],
)
def test_refuses_other_forms(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ocpi_datetime(text)


def test_serializes_back_to_the_same_text() -> None:
    for text in ("2015-06-29T20:39:09Z", "2015-06-29T20:39:09.120Z"):
        assert Stamped.model_validate({"at": text}).model_dump(mode="json") == {"at": text}
    assert format_ocpi_datetime(datetime(2020, 1, 1, tzinfo=UTC)) == "2020-01-01T00:00:00Z"
