"""The page logic of the admin dashboard's pages beyond the board
(api/admin/pages.py): pure functions from view documents to what a page
shows."""

from __future__ import annotations

from api.admin.pages import command_targets


def test_a_charger_offers_its_connectors_in_ocpp_order_as_commands_name_them() -> None:
    doc = {
        "_id": "CP-1",
        "location_id": "LOC1",
        "connectors": [
            {"ocpp_connector_id": 2, "evse_uid": "E2", "connector_id": "1"},
            {"ocpp_connector_id": 1, "evse_uid": "E1", "connector_id": "1"},
            {"ocpp_connector_id": 3, "evse_uid": "", "connector_id": "1"},  # not mapped
        ],
    }
    targets = command_targets(doc)
    assert [(t["evse_uid"], t["connector_id"]) for t in targets] == [("E1", "1"), ("E2", "1")]
    assert {t["location_id"] for t in targets} == {"LOC1"}
    assert targets[0]["label"] == "CP-1 · OCPP connector 1 (E1 / 1)"
    assert command_targets({"_id": "CP-2", "location_id": "L"}) == []
