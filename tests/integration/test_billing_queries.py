"""The billing tables' reads the dashboard's corporations list filters with
(projections/mysql/billing.py: ``BillingRowQuery.corporations``), against
MariaDB: status, country, a part of the legal name in any case, and a % or
_ in that part taken as typed, not as a wildcard."""

from __future__ import annotations

from sqlalchemy import insert

from ocpi_hub.bootstrap import mysql_engine
from ocpi_hub.settings import Settings
from projections.mysql.billing import BillingRowQuery, corporation_row, corporations
from projections.mysql.migrate import migrate
from schemas.events.billing import CorporationStatus
from tests.conftest import fresh_namespace
from tests.unit.test_billing import registered

COMPANIES = [
    ("aaaaaaaaaa01", "Acme Fleet B.V.", "NL", CorporationStatus.ACTIVE),
    ("aaaaaaaaaa02", "Acme_Fleet 100% SA", "BE", CorporationStatus.SUSPENDED),
    ("aaaaaaaaaa03", "Zeta Mobility", "NL", CorporationStatus.CLOSED),
]


def test_corporations_are_filtered_by_status_country_and_name(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        engine = mysql_engine(namespace.settings)
        try:
            migrate(engine)
            rows = [
                corporation_row(
                    registered().model_copy(
                        update={
                            "corporation_id": cid,
                            "legal_name": name,
                            "country": country,
                            "status": status,
                        }
                    )
                )
                for cid, name, country, status in COMPANIES
            ]
            with engine.begin() as conn:
                conn.execute(insert(corporations), rows)
            query = BillingRowQuery(engine)

            def ids(
                *,
                status: str | None = None,
                country: str | None = None,
                name: str | None = None,
                after: str | None = None,
                limit: int = 100,
            ) -> list[str]:
                found = query.corporations(
                    status=status, country=country, name=name, after=after, limit=limit
                )
                return [r["corporation_id"] for r in found]

            assert ids() == ["aaaaaaaaaa01", "aaaaaaaaaa02", "aaaaaaaaaa03"]
            assert ids(status="SUSPENDED") == ["aaaaaaaaaa02"]
            assert ids(country="NL") == ["aaaaaaaaaa01", "aaaaaaaaaa03"]
            assert ids(name="ACME") == ["aaaaaaaaaa01", "aaaaaaaaaa02"]  # any case
            assert ids(name="acme", country="NL") == ["aaaaaaaaaa01"]
            # "_" is no wildcard: "Acme Fleet" does not match "e_f".
            assert ids(name="e_f") == ["aaaaaaaaaa02"]
            # Nor is "%": it would match every name.
            assert ids(name="100%") == ["aaaaaaaaaa02"]
            assert ids(name="%") == ["aaaaaaaaaa02"]
            assert ids(name="nobody") == []
            assert ids(after="aaaaaaaaaa01", limit=1) == ["aaaaaaaaaa02"]
        finally:
            engine.dispose()
