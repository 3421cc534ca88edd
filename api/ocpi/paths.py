"""Path parameters shared by the OCPI routes, with the spec's limits."""

from typing import Annotated

from fastapi import Path

CountryCodePath = Annotated[str, Path(pattern=r"^[A-Za-z]{2}$")]
PartyIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{3}$")]
# mod_locations: Location.id and EVSE.uid are CiString(36).
LocationIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
EvseUidPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
# mod_locations: Connector.id is CiString(36).
ConnectorIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
# mod_tariffs: Tariff.id is CiString(36).
TariffIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
# The OCPI version of a route served in several versions (docs/adr/0045);
# the caller's dependency refuses one we do not offer (3002).
VersionPath = Annotated[str, Path(max_length=10, description="OCPI version, e.g. 2.2.1 or 2.1.1")]
