"""Write ``rules/schema.json``, the JSON Schema of a rule file, from the pydantic models.

    python -m orchestrator.core.rules.schema            # rewrites rules/schema.json
    python -m orchestrator.core.rules.schema --check    # exit 1 if it is stale

Editors use it to complete and check ``rules/*.yaml`` (e.g. a ``# yaml-language-server:
$schema=schema.json`` line); ``tests/unit/test_rules_schema.py`` fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator.core.rules.model import rule_file_json_schema

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "rules" / "schema.json"


def schema_text() -> str:
    return json.dumps(rule_file_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = schema_text()
    if "--check" in argv:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is stale: run python -m orchestrator.core.rules.schema",
                  file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
