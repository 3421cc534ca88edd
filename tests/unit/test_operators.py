"""The operators slice's pure decisions and folds (producers/operators.py):
accounts and API keys, their hashes, and the sign-in check the browser
login will call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers import operators as ops
from producers.write_path import Origin, RefusedError
from schemas.events import Party, parse_event, serialize_event
from schemas.events.operators import OperatorRole

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="ZZ", party_id="HUB"), "c-1")


def _added(password: str = "correct horse battery") -> ops.AccountState:
    decision = ops.decide_add_account(
        None, login="ada", display_name="Ada", role=OperatorRole.OPERATOR,
        password_hash=ops.hash_password(password), origin=ORIGIN, now=NOW,
    )  # fmt: skip
    [event] = decision.events
    # The event carries the hash, never the password, and reads back as written.
    assert "correct horse" not in serialize_event(event).decode()
    assert parse_event(serialize_event(event)) == event
    assert ops.ACCOUNTS.fold(None, decision.events) == decision.answer
    return decision.answer


def test_an_account_signs_in_with_its_password_only() -> None:
    ada = _added()
    assert ada.password_hash.startswith("$argon2id$")
    assert ops.account_that_signs_in(ada, "correct horse battery") == ada
    assert ops.account_that_signs_in(ada, "wrong horse battery") is None
    assert ops.account_that_signs_in(None, "correct horse battery") is None


def test_a_disabled_account_does_not_sign_in_and_keeps_its_login() -> None:
    ada = _added()
    disabled = ops.decide_disable(ada, login="ada", origin=ORIGIN, now=NOW)
    assert disabled.answer.disabled
    assert ops.account_that_signs_in(disabled.answer, "correct horse battery") is None
    assert ops.decide_disable(disabled.answer, login="ada", origin=ORIGIN, now=NOW).events == []
    with pytest.raises(RefusedError) as refused:
        ops.decide_add_account(
            disabled.answer, login="ada", display_name="Other", role=OperatorRole.ADMIN,
            password_hash="x", origin=ORIGIN, now=NOW,
        )  # fmt: skip
    assert refused.value.http_status == 409


def test_set_role_changes_only_the_role() -> None:
    ada = _added()
    done = ops.decide_set_role(ada, login="ada", role=OperatorRole.ADMIN, origin=ORIGIN, now=NOW)
    assert done.answer.role is OperatorRole.ADMIN
    assert done.answer.password_hash == ada.password_hash
    same = ops.decide_set_role(
        done.answer, login="ada", role=OperatorRole.ADMIN, origin=ORIGIN, now=NOW
    )
    assert same.events == []
    with pytest.raises(RefusedError):
        ops.decide_set_role(None, login="bob", role=OperatorRole.ADMIN, origin=ORIGIN, now=NOW)


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="12 to 1024"):
        ops.hash_password("short")


def test_an_api_key_is_found_by_its_hash_until_revoked() -> None:
    key_id, key = ops.new_api_key()
    assert key.startswith(f"ohk_{key_id}_") and len(key) > 50
    assert ops.new_api_key()[1] != key
    made = ops.decide_create_key(
        None, key_id=key_id, name="ci", role=OperatorRole.VIEWER,
        key_hash=ops.hash_api_key(key), origin=ORIGIN, now=NOW,
    )  # fmt: skip
    assert key not in serialize_event(made.events[0]).decode()
    assert ops.API_KEYS_SLICE.lookups is not None
    assert list(ops.API_KEYS_SLICE.lookups(made.answer)) == [ops.hash_api_key(key)]
    revoked = ops.decide_revoke_key(made.answer, key_id=key_id, origin=ORIGIN, now=NOW)
    assert revoked.answer.revoked and revoked.answer.revoked_at == NOW
    assert list(ops.API_KEYS_SLICE.lookups(revoked.answer)) == []
    assert "key_hash" not in ops.shown_api_key(revoked.answer)
    with pytest.raises(RefusedError):
        ops.decide_revoke_key(None, key_id="nope00000000", origin=ORIGIN, now=NOW)


def test_an_event_without_actor_keeps_its_old_form() -> None:
    ada = _added()
    decision = ops.decide_disable(ada, login="ada", origin=ORIGIN, now=NOW)
    raw = serialize_event(decision.events[0]).decode()
    assert '"actor"' not in raw
    assert parse_event(raw).actor is None
