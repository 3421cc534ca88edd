"""MongoDB views of the operators slice (producers/operators.py): one
document per operator account (``operator_accounts``) and per API key
(``api_keys``), the slice's own folds with their log positions, for readers
(the dashboard's account pages). Neither holds a hash: signing in and
checking a key read the decision store, never a view (docs/adr/0031).

    operator_accounts: {_id: "ada", login, display_name, role, disabled,
                        created_at, updated_at, _positions}
    api_keys:          {_id: "k1x...", key_id, name, role, revoked,
                        created_at, revoked_at, _positions}
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from producers.operators import (
    AccountState,
    ApiKeyState,
    evolve_account,
    evolve_api_key,
)
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events.operators import (
    ApiKeyCreated,
    ApiKeyRevoked,
    OperatorAccountAdded,
    OperatorAccountDisabled,
    OperatorRoleSet,
)

ACCOUNTS = "operator_accounts"
API_KEYS = "api_keys"
# The hashes stay in the decision store; a view copy would be one more
# place to leak them from. The fold below needs them, so documents keep a
# placeholder that verifies nothing.
_NO_HASH = "-"


def _positions(doc: Doc | None, record: Record[Any]) -> dict[str, int]:
    return {**(doc or {}).get("_positions", {}), record.position_field: record.offset}


def _fields(doc: Doc) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def apply_account(doc: Doc | None, record: Record[Any]) -> Doc | None:
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    before = (
        AccountState.model_validate({**_fields(doc), "password_hash": _NO_HASH}) if doc else None
    )
    after = evolve_account(before, record.event)
    if after is None:
        return doc
    shown = after.model_dump(exclude={"password_hash"})
    return {"_id": after.login, **shown, "_positions": _positions(doc, record)}


def apply_api_key(doc: Doc | None, record: Record[Any]) -> Doc | None:
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    before = ApiKeyState.model_validate({**_fields(doc), "key_hash": _NO_HASH}) if doc else None
    after = evolve_api_key(before, record.event)
    if after is None:
        return doc
    shown = after.model_dump(exclude={"key_hash"})
    return {"_id": after.key_id, **shown, "_positions": _positions(doc, record)}


_ACCOUNT_EVENTS = (OperatorAccountAdded, OperatorRoleSet, OperatorAccountDisabled)
_KEY_EVENTS = (ApiKeyCreated, ApiKeyRevoked)


def _account_key(record: Record[Any]) -> str | None:
    return record.event.aggregate_key if isinstance(record.event, _ACCOUNT_EVENTS) else None


def _api_key_key(record: Record[Any]) -> str | None:
    return record.event.aggregate_key if isinstance(record.event, _KEY_EVENTS) else None


class AccountViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            f"mongo.{ACCOUNTS}", db[ACCOUNTS], _account_key, apply_account, reads=_ACCOUNT_EVENTS
        )


class ApiKeyViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            f"mongo.{API_KEYS}", db[API_KEYS], _api_key_key, apply_api_key, reads=_KEY_EVENTS
        )
