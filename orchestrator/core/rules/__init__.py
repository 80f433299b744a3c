"""Rules as data: journey owners' YAML, checked and compiled, and next-best-action arbitration.

- :func:`load_rule_set` / :func:`load_rule_directory` / :func:`load_rule_file` turn
  ``rules/*.yaml`` into a :class:`RuleSet`, or raise :class:`RuleSetError` listing every
  problem (:class:`RuleError`), within the limits of :mod:`.limits`.
- :func:`decide` evaluates a rule set for one event and arbitrates: at most one action per
  channel, with what was held back and why.

The format and the arbitration formula are documented in ``rules/README.md``; the JSON Schema
of a rule file is ``rules/schema.json`` (:func:`rule_file_json_schema`). Pure: no Faust, no
Kafka, no clock.
"""

from orchestrator.core.rules.arbitration import (
    CAUSES,
    Arbitration,
    Decision,
    Suppressed,
    cap_key,
    decide,
    in_holdout,
)
from orchestrator.core.rules.errors import RuleError, RuleSetError
from orchestrator.core.rules.loader import load_rule_directory, load_rule_file, load_rule_set
from orchestrator.core.rules.model import CHANNELS, CONSENT_CATEGORIES, rule_file_json_schema
from orchestrator.core.rules.ruleset import Rule, RuleSet

__all__ = [
    "CAUSES",
    "CHANNELS",
    "CONSENT_CATEGORIES",
    "Arbitration",
    "Decision",
    "Rule",
    "RuleError",
    "RuleSet",
    "RuleSetError",
    "Suppressed",
    "cap_key",
    "decide",
    "in_holdout",
    "load_rule_directory",
    "load_rule_file",
    "load_rule_set",
    "rule_file_json_schema",
]
