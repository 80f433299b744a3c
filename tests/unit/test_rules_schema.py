"""rules/schema.json is generated from the pydantic models and must not go stale."""

from __future__ import annotations

import json

from orchestrator.core.rules.model import CHANNELS, CONDITION_MODELS, rule_file_json_schema
from orchestrator.core.rules.schema import SCHEMA_PATH, main, schema_text


def test_schema_json_is_up_to_date_with_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "rules/schema.json is stale: run .venv/bin/python -m orchestrator.core.rules.schema")
    assert main(["--check"]) == 0


def test_schema_describes_rule_files() -> None:
    schema = rule_file_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"version", "lookups", "rules"}
    assert schema["additionalProperties"] is False
    rule = schema["$defs"]["Rule"]
    assert set(rule["required"]) == {"id", "description", "channel", "action", "when"}
    assert rule["properties"]["channel"]["enum"] == list(CHANNELS)
    assert rule["properties"]["when"]["$ref"] == "#/$defs/Condition"
    assert [ref["$ref"] for ref in schema["$defs"]["Condition"]["anyOf"]] == [
        f"#/$defs/{model.__name__}" for model in CONDITION_MODELS.values()]
    assert schema["$defs"]["AllCondition"]["properties"]["all"]["items"] == {"$ref": "#/$defs/Condition"}
    assert "in" in schema["$defs"]["FieldCondition"]["properties"]  # aliases, as written in YAML
    assert "not" in schema["$defs"]["NotCondition"]["properties"]


def test_schema_is_plain_json() -> None:
    assert json.loads(schema_text()) == rule_file_json_schema()
