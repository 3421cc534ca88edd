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
