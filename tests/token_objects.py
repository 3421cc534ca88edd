"""Valid OCPI 2.2.1 Token objects for tests, small and explicit."""

from __future__ import annotations

from typing import Any

AT = "2026-03-01T09:00:00Z"


def token(
    uid: str = "04A1B2C3",
    *,
    country_code: str = "NL",
    party_id: str = "ABD",
    type: str = "RFID",
    valid: bool = True,
    whitelist: str = "ALWAYS",
    at: str = AT,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": type,
        "contract_id": f"{country_code}-{party_id}-C{uid[-4:]}",
        "issuer": "Test Mobility",
        "valid": valid,
        "whitelist": whitelist,
        "last_updated": at,
        **fields,
    }
