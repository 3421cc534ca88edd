"""Versions module objects (version_information_endpoint.asciidoc)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AnyHttpUrl, Field

from schemas.ocpi.common import OcpiModel


class VersionNumber(StrEnum):
    V2_0 = "2.0"
    V2_1 = "2.1"
    V2_1_1 = "2.1.1"
    V2_2 = "2.2"
    V2_2_1 = "2.2.1"


class ModuleId(StrEnum):
    CDRS = "cdrs"
    CHARGING_PROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUB_CLIENT_INFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


class InterfaceRole(StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class Version(OcpiModel):
    """Version _class_."""

    version: str = Field(max_length=10)  # unknown future versions are listed, not refused
    url: AnyHttpUrl


class Endpoint(OcpiModel):
    """Endpoint _class_."""

    identifier: str = Field(max_length=32)  # custom modules may appear; we use the known ones
    role: InterfaceRole
    url: AnyHttpUrl


class VersionDetails(OcpiModel):
    """Version details endpoint, Data."""

    version: str = Field(max_length=10)
    endpoints: list[Endpoint] = Field(min_length=1)
