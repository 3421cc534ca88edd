"""The published OpenAPI describes every operation well enough to call it
(issue 12, item 5): every ``{name}`` in a path is a declared path parameter,
and every OCPI write names its body's schema. Schema fuzzing
(tests/fuzz/test_fuzz_openapi.py) refuses a schema that breaks the
first; this keeps it so without services."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.app import create_app
from ocpi_hub.settings import Settings

METHODS = {"get", "put", "patch", "post", "delete"}

# OCPI writes with no body by design: a Tariff has no PATCH in OCPI 2.2.1
# (always answered 405).
BODILESS_OCPI_WRITES = {
    ("patch", "/ocpi/emsp/{version}/tariffs/{country_code}/{party_id}/{tariff_id}")
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in openapi["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_every_path_parameter_is_declared(openapi: dict[str, Any]) -> None:
    missing = []
    for method, path, op in operations(openapi):
        in_path = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        if in_path != declared:
            missing.append((method.upper(), path, sorted(in_path ^ declared)))
    assert missing == []


def test_the_tariff_patch_routes_declare_their_path(openapi: dict[str, Any]) -> None:
    # The two routes that once published a templated path without parameters.
    ocpi = openapi["paths"]["/ocpi/emsp/{version}/tariffs/{country_code}/{party_id}/{tariff_id}"]
    names = [p["name"] for p in ocpi["patch"]["parameters"] if p["in"] == "path"]
    assert names == ["version", "country_code", "party_id", "tariff_id"]
    ops = openapi["paths"]["/ops/tariffs/{tariff_id}"]
    assert [p["name"] for p in ops["patch"]["parameters"]] == ["tariff_id"]


def test_every_ocpi_write_names_its_body_schema(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    loose = []
    for method, path, op in operations(openapi):
        if not path.startswith("/ocpi/") or method not in {"put", "patch", "post"}:
            continue
        if (method, path) in BODILESS_OCPI_WRITES:
            assert "requestBody" not in op
            continue
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        refs = re.findall(r"#/components/schemas/(\w+)", str(schema))
        if not refs or any(ref not in schemas for ref in refs):
            loose.append((method.upper(), path, schema))
    assert loose == []
