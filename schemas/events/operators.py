"""Events of the operators slice: who may use the ops API (docs/adr/0031).

Two topics. ``ocpi-hub.operator-accounts.v1``, keyed by the account's login
(lower-cased): people, with a role and an argon2id password hash.
``ocpi-hub.api-keys.v1``, keyed by the key's id: machines, with a role and
the SHA-256 hash of the key. Neither a password nor a key is ever in an
event, only their hashes; still, grant these topics to no one who does not
need them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events.envelope import EventMeta

# Lower-case letters, digits and ``.-_@``: a login is a key in the log and
# in Redis, typed at a prompt; one spelling per person.
LOGIN_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
KEY_ID_PATTERN = r"^[a-z0-9]{12}$"

Login = Annotated[str, Field(pattern=LOGIN_PATTERN)]
KeyId = Annotated[str, Field(pattern=KEY_ID_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=100)]


class OperatorRole(StrEnum):
    """What an operator may do under /ops (the route table: api/ops/access.py)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    BILLING = "billing"
    ADMIN = "admin"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OperatorAccountAddedPayload(_Payload):
    login: Login
    display_name: Text
    role: OperatorRole
    # argon2id in its PHC string form ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
    password_hash: Annotated[str, Field(min_length=1, max_length=300)]
    at: AwareDatetime


class OperatorAccountAdded(EventMeta):
    """An operator account was created (``ocpi-hub users add``)."""

    event_type: Literal["OperatorAccountAdded"] = "OperatorAccountAdded"
    schema_version: Literal[1] = 1
    payload: OperatorAccountAddedPayload


class OperatorRoleSetPayload(_Payload):
    login: Login
    role: OperatorRole
    at: AwareDatetime


class OperatorRoleSet(EventMeta):
    """An account's role was changed (``ocpi-hub users set-role``)."""

    event_type: Literal["OperatorRoleSet"] = "OperatorRoleSet"
    schema_version: Literal[1] = 1
    payload: OperatorRoleSetPayload


class OperatorAccountDisabledPayload(_Payload):
    login: Login
    at: AwareDatetime


class OperatorAccountDisabled(EventMeta):
    """An account may no longer sign in (``ocpi-hub users disable``)."""

    event_type: Literal["OperatorAccountDisabled"] = "OperatorAccountDisabled"
    schema_version: Literal[1] = 1
    payload: OperatorAccountDisabledPayload


class ApiKeyCreatedPayload(_Payload):
    key_id: KeyId
    name: Text
    role: OperatorRole
    # SHA-256 (hex) of the whole key as presented; the key is shown once.
    key_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    at: AwareDatetime


class ApiKeyCreated(EventMeta):
    """An API key was issued (``ocpi-hub api-keys create``)."""

    event_type: Literal["ApiKeyCreated"] = "ApiKeyCreated"
    schema_version: Literal[1] = 1
    payload: ApiKeyCreatedPayload


class ApiKeyRevokedPayload(_Payload):
    key_id: KeyId
    at: AwareDatetime


class ApiKeyRevoked(EventMeta):
    """An API key stops working, for good (``ocpi-hub api-keys revoke``)."""

    event_type: Literal["ApiKeyRevoked"] = "ApiKeyRevoked"
    schema_version: Literal[1] = 1
    payload: ApiKeyRevokedPayload


AccountEvent = OperatorAccountAdded | OperatorRoleSet | OperatorAccountDisabled
ApiKeyEvent = ApiKeyCreated | ApiKeyRevoked
