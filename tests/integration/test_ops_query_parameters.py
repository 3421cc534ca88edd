"""Every query parameter of the MySQL ops reads, given text MySQL must not
choke on (non-ASCII, 4-byte UTF-8, invalid percent-encodings, quotes and
wildcards): a clear 4xx with OCPI 2001, or a correct page; never a 500
(docs/adr/0027)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.errors import install_error_handlers
from api.ops import evses as evses_api
from api.ops import sites as sites_api
from ocpi_hub.bootstrap import mysql_engine
from projections.mysql.migrate import migrate
from projections.mysql.sites import HierarchyWriter, OpsQuery
from tests.integration.test_mysql_hierarchy import fleet
from tests.ops_admin import as_admin
from tests.services import Namespace

ODD = [
    "%C3%94",  # Ô: the issue's cursor
    "%F0%9F%94%8C",  # a 4-byte character (emoji)
    "%FF%FE",  # not UTF-8 at all
    "NL%2FABC%2F%C3%94",  # a key-shaped cursor with a non-ASCII id
    "%27%20OR%201%3D1%20--",  # a quote
    "%25",  # a LIKE wildcard
    "%00",  # NUL
]


@pytest.fixture(scope="module")
def engine(namespace: Namespace) -> Iterator[Engine]:
    built = mysql_engine(namespace.settings)
    migrate(built)
    yield built
    built.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    writer = HierarchyWriter(engine)
    writer.prepare()
    writer.wipe()
    fleet(writer)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(evses_api.router)
    app.include_router(sites_api.router)
    app.state.container = SimpleNamespace(ops=OpsQuery(engine))
    as_admin(app)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/ops/evses", "after"),
        ("/ops/evses", "country_code"),
        ("/ops/evses", "party_id"),
        ("/ops/evses", "location_id"),
        ("/ops/evses", "status"),
        ("/ops/evses", "limit"),
        ("/ops/sites", "after"),
        ("/ops/sites", "country_code"),
        ("/ops/sites", "party_id"),
        ("/ops/sites", "limit"),
    ],
)
def test_odd_text_in_any_parameter_is_never_a_500(
    client: TestClient, path: str, parameter: str
) -> None:
    for raw in ODD:
        resp = client.get(f"{path}?{parameter}={raw}")
        assert resp.status_code in (200, 400), (raw, resp.status_code, resp.text)
        body = resp.json()
        if resp.status_code == 400:
            assert body["status_code"] == 2001, body
            assert parameter in body["status_message"], body
        elif parameter == "after":
            # A printable ASCII cursor: the keys after it, in byte order.
            cursor = unquote(raw)
            key = "evse_key" if path == "/ops/evses" else "location_key"
            keys = [item[key] for item in body["data"]]
            assert keys == sorted(keys) and all(k > cursor for k in keys), (raw, keys)
        else:
            # Nothing can match such a value: a correct, empty page.
            assert body["status_code"] == 1000 and body["data"] == [], (raw, body)


def test_the_issues_cursor_is_a_clear_2001(client: TestClient) -> None:
    for path in ("/ops/evses", "/ops/sites"):
        resp = client.get(f"{path}?after=%C3%94")
        assert resp.status_code == 400
        assert resp.json()["status_code"] == 2001
        assert "after" in resp.json()["status_message"]


def test_an_ascii_cursor_still_pages(client: TestClient) -> None:
    resp = client.get("/ops/evses", params={"after": "NL/ABC/LOC1/~"})
    assert resp.status_code == 200
    assert {e["location_id"] for e in resp.json()["data"]} == {"Loc2"}
    sites = client.get("/ops/sites", params={"after": "NL/ABC/LOC1"}).json()["data"]
    assert [s["location_id"] for s in sites] == ["Loc2"]
