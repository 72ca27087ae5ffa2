"""A field that a create operation validates is validated the same way by the change operation of the same
resource: the pairs and the fields are read from the OpenAPI document, not listed here."""

from __future__ import annotations

import pytest

from backend.config import Settings
from backend.main import create_app
from tests.fixtures.change_schemas import change_pairs, is_nullable, resolve, without_null

DOCUMENT = create_app(Settings(), run_worker=False).openapi()
PAIRS = change_pairs(DOCUMENT)
FIELDS = [(pair, name) for pair in PAIRS for name in pair.change_schema.get("properties", {})]


def _id(value):
    if isinstance(value, tuple):
        return f"{value[0].item_path}:{value[1]}"
    return None


def test_every_resource_with_a_change_operation_is_found():
    assert {pair.item_path for pair in PAIRS} >= {
        "/api/v1/incidents/{incident_id}",
        "/api/v1/users/{user_id}",
        "/api/v1/notify/endpoints/{endpoint_id}",
        "/api/v1/sla/policies/{policy_id}",
        "/api/v1/sla/escalation-rules/{rule_id}",
    }


@pytest.mark.parametrize("pair", PAIRS, ids=lambda pair: pair.item_path)
def test_a_change_requires_no_field(pair):
    assert pair.change_schema.get("required", []) == []


@pytest.mark.parametrize("pair, name", FIELDS, ids=_id)
def test_a_changed_field_has_the_create_schema_and_nullability(pair, name):
    change = pair.change_schema["properties"][name]
    create = pair.create_schema.get("properties", {}).get(name)
    if create is None:  # a field only a change sets (is_active): it must still refuse null
        assert not is_nullable(change), f"{name} accepts null on change but has no create counterpart"
        return
    assert is_nullable(change) == is_nullable(create), f"{name}: null accepted by one operation only"
    assert resolve(without_null(change), DOCUMENT) == resolve(without_null(create), DOCUMENT)
