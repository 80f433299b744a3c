"""Loading a rule set: every mistake named by file, rule and field; versions; directories."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core.rules import RuleError, RuleSet, RuleSetError, load_rule_directory, load_rule_set

from .factories import LOGIN_PROMPT, SELF_SERVICE_DOC, rule

GOOD = yaml.safe_dump(SELF_SERVICE_DOC, sort_keys=False)


def errors_of(documents: dict[str, str]) -> list[RuleError]:
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(documents)
    return caught.value.errors


def one_rule_file(**fields: Any) -> dict[str, str]:
    return {"rules/web.yaml": yaml.safe_dump({"rules": [rule(**fields)]}, sort_keys=False)}


def test_the_example_error_reads_as_one_line_naming_file_rule_and_field() -> None:
    doc = yaml.safe_load(GOOD)
    doc["rules"][0]["when"]["all"][1] = {"field": "profile.sessions", "gte": "three"}
    [error] = errors_of({"rules/web.yaml": yaml.safe_dump(doc)})
    assert error == RuleError("rules/web.yaml", "self-service-login-prompt", "when.all[1].gte",
                              "expected a number, got 'three'")
    assert str(error) == ("rules/web.yaml: rule 'self-service-login-prompt': when.all[1].gte: "
                          "expected a number, got 'three'")


# One row per kind of mistake: the change to a valid rule, and the (field, message) expected.
MISTAKES = [
    ("unknown key", {"colour": "red"}, "colour", "unknown key"),
    ("misspelt key", {"priorty": 3}, "priorty", "unknown key (did you mean 'priority'?)"),
    ("missing description", {"description": ...}, "description", "required"),
    ("missing when", {"when": ...}, "when", "required"),
    ("bad channel", {"channel": "wbe"}, "channel",
     "expected 'app', 'contact-centre', 'email', 'push', 'sms' or 'web', got 'wbe'"),
    ("bad consent", {"consent": "legal"}, "consent", "expected 'service' or 'marketing', got 'legal'"),
    ("bad action name", {"action": "Log In"}, "action", "'Log In' is not allowed here"),
    ("negative value", {"value": -1}, "value", "must be at least 0, got -1"),
    ("text as number", {"weight": "heavy"}, "weight", "expected a number, got 'heavy'"),
    ("float priority", {"priority": 1.5}, "priority", "expected a whole number, got 1.5"),
    ("negative cooldown", {"caps": {"cooldown_s": -5}}, "caps.cooldown_s", "must be at least 0, got -5"),
    ("zero cap", {"caps": {"max_per_day": 0}}, "caps.max_per_day", "must be at least 1, got 0"),
    ("huge cap", {"caps": {"max_per_week": 100}}, "caps.max_per_week", "must be at most 32, got 100"),
    ("bad cap scope", {"caps": {"per": "person"}}, "caps.per",
     "expected 'rule', 'action' or 'action_and_topic', got 'person'"),
    ("misspelt cap", {"caps": {"cooldown": 60}}, "caps.cooldown", "did you mean 'cooldown_s'?"),
    ("unknown stop event", {"caps": {"stop_after": ["callback"]}}, "caps.stop_after[0]",
     "got 'callback'"),
    ("holdout over 100", {"holdout_percent": 150}, "holdout_percent", "must be at most 100, got 150"),
    ("zero expiry", {"expires_after_s": 0}, "expires_after_s", "must be at least 1, got 0"),
    ("time without zone", {"valid_from": "2026-12-01T00:00:00"}, "valid_from", "has no zone"),
    ("not a time", {"valid_until": "next week"}, "valid_until", "expected an ISO-8601 time"),
    ("window backwards", {"valid_from": "2026-12-02T00:00:00Z", "valid_until": "2026-12-01T00:00:00Z"},
     "valid_until", "is not after valid_from"),
    ("bad operator", {"when": {"field": "event.type", "like": "page%"}}, "when.like", "unknown key"),
    ("bad path", {"when": {"field": "event.page.categroy", "eq": "x"}}, "when.field",
     "did you mean event.page.category?"),
    ("bad template", {"payload": {"url": "{event.page.url|urlencod}"}}, "payload.url",
     "unknown filter 'urlencod'"),
    ("unclosed template", {"payload": {"url": "/x?{event.page.url"}}, "payload.url", "is not closed"),
    ("unknown lookup", {"payload": {"url": "{lookup.pages[event.page.category].url}"}}, "payload.url",
     "unknown lookup 'pages'"),
    ("already_there not a url", {"already_there": "profile.logged_in"}, "already_there",
     "profile.logged_in is not a URL"),
    ("bad propensity", {"propensity": "churn risk"}, "propensity", "is not allowed here"),
    ("payload not a mapping", {"payload": ["a"]}, "payload", "expected a mapping"),
]


@pytest.mark.parametrize(("change", "field", "message"),
                         [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_kind_of_mistake_is_named_by_file_rule_and_field(change: dict, field: str,
                                                               message: str) -> None:
    doc = rule(id="my-rule", **{k: v for k, v in change.items() if v is not ...})
    for key in [k for k, v in change.items() if v is ...]:
        del doc[key]
    errors = errors_of({"rules/web.yaml": yaml.safe_dump({"rules": [doc]}, sort_keys=False)})
    assert any(e.file == "rules/web.yaml" and e.rule == "my-rule" and e.field == field
               and message in e.message for e in errors), [str(e) for e in errors]


def test_every_mistake_in_every_file_is_reported_at_once() -> None:
    errors = errors_of({
        "rules/a.yaml": yaml.safe_dump({"rules": [rule(id="a1", channel="fax", value="x")]}),
        "rules/b.yaml": yaml.safe_dump({"rules": [rule(id="b1", when={"field": "event.nope",
                                                                         "eq": 1})]}),
    })
    assert [(e.file, e.rule, e.field) for e in errors] == [
        ("rules/a.yaml", "a1", "channel"), ("rules/a.yaml", "a1", "value"),
        ("rules/b.yaml", "b1", "when.field")]


def test_rule_ids_must_be_unique_across_files() -> None:
    errors = errors_of({"rules/a.yaml": yaml.safe_dump({"rules": [rule(id="same")]}),
                        "rules/b.yaml": yaml.safe_dump({"rules": [rule(id="same")]})})
    assert [str(e) for e in errors] == [
        "rules/b.yaml: rule 'same': id: the id is already used by a rule in rules/a.yaml"]


def test_rule_ids_must_be_unique_within_a_file() -> None:
    [error] = errors_of({"rules/a.yaml": yaml.safe_dump({"rules": [rule(id="x"), rule(id="x")]})})
    assert (error.rule, error.field) == ("x", "id")


def test_a_rule_without_an_id_is_named_by_its_position() -> None:
    doc = rule()
    del doc["id"]
    errors = errors_of({"rules/a.yaml": yaml.safe_dump({"rules": [rule(id="ok"), doc]})})
    assert [str(e) for e in errors] == ["rules/a.yaml: rules[1].id: required"]


def test_a_rule_that_is_not_a_mapping_is_named_by_its_position() -> None:
    [error] = errors_of({"rules/a.yaml": "rules:\n  - just text\n"})
    assert str(error).startswith("rules/a.yaml: rules[0]: a rule is a mapping")


def test_bad_rule_id_is_named() -> None:
    [error] = errors_of(one_rule_file(id="Login Prompt!"))
    assert (error.rule, error.field) == ("Login Prompt!", "id")


def test_duplicate_yaml_keys_are_rejected_with_their_lines() -> None:
    text = textwrap.dedent("""\
        rules:
          - id: twice
            description: a rule with when written twice
            channel: web
            action: nudge
            when: {field: event.type, eq: page_view}
            when: {field: event.type, eq: click}
        """)
    [error] = errors_of({"rules/web.yaml": text})
    assert str(error) == ("rules/web.yaml: rule 'twice': when: duplicate key on line 7 (first on line "
                          "6); YAML would keep only the last")


def test_duplicate_top_level_and_nested_keys() -> None:
    text = "rules: []\nlookups:\n  pages: {a: 1, a: 2}\nrules: []\n"
    errors = errors_of({"r.yaml": text})
    assert sorted((e.field, e.message.split(" (")[0]) for e in errors) == [
        ("lookups.pages.a", "duplicate key on line 3"), ("rules", "duplicate key on line 4")]


@pytest.mark.parametrize(("text", "message"), [
    ("rules: [unclosed\n", "not valid YAML: "),
    ("", "the file is empty; expected rules: [...]"),
    ("- a list\n", "expected a mapping with rules: [...], got ['a list']"),
    ("version: 2\nrules: []\n", "version: expected text, got 2 (quote it)"),
    ("rules: {a: 1}\n", "rules: expected a list, got {a: 1}"),
    ("rulez: []\n", "rulez: unknown key (did you mean 'rules'?)"),
    ("lookups: {pages: [1, 2]}\nrules: []\n", "lookups.pages: expected a mapping"),
    ("lookups: {bad name: {a: 1}}\nrules: []\n", "lookups.bad name"),
])
def test_file_level_mistakes(text: str, message: str) -> None:
    errors = errors_of({"rules/x.yaml": text})
    assert any(str(e).startswith("rules/x.yaml: ") and message in str(e) for e in errors), \
        [str(e) for e in errors]


def test_yaml_error_names_line_and_column_on_one_line() -> None:
    [error] = errors_of({"rules/x.yaml": "rules:\n  - id: a\n    when: {field: [\n"})
    assert "\n" not in str(error)
    assert "(line " in error.message and "column " in error.message


def test_times_stay_text_and_unquoted_iso_times_are_accepted() -> None:
    text = textwrap.dedent("""\
        rules:
          - id: advent
            description: only in December
            channel: web
            action: nudge
            when: {field: event.type, eq: page_view}
            valid_from: 2026-12-01T00:00:00+01:00
            valid_until: 2027-01-01T00:00:00Z
        """)
    [compiled] = load_rule_set({"r.yaml": text}).rules
    assert compiled.valid_from_ms == datetime(2026, 11, 30, 23, tzinfo=UTC).timestamp() * 1000
    assert compiled.valid_until_ms == datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000


# ---------------------------------------------------------------- lookups and versions

def test_lookups_are_shared_across_files_and_defined_once() -> None:
    lookups = yaml.safe_dump({"lookups": {"pages": {"billing": {"url": "/b"}}}})
    uses = yaml.safe_dump({"rules": [rule(payload={"url": "{lookup.pages[event.page.category].url}"})]})
    rule_set = load_rule_set({"rules/a_lookups.yaml": lookups, "rules/b.yaml": uses})
    assert list(rule_set.lookups) == ["pages"]
    [error] = errors_of({"rules/a.yaml": lookups, "rules/b.yaml": lookups + uses})
    assert str(error) == "rules/b.yaml: lookups.pages: lookup 'pages' is also defined in rules/a.yaml"


def test_version_is_what_every_file_says() -> None:
    a = yaml.safe_dump({"version": "7", "rules": [rule(id="a")]})
    b = yaml.safe_dump({"version": "7", "rules": [rule(id="b")]})
    assert load_rule_set({"a.yaml": a, "b.yaml": b}).version == "7"


def test_files_must_agree_on_the_version() -> None:
    a = yaml.safe_dump({"version": "7", "rules": [rule(id="a")]})
    b = yaml.safe_dump({"version": "8", "rules": [rule(id="b")]})
    c = yaml.safe_dump({"rules": [rule(id="c")]})
    errors = errors_of({"a.yaml": a, "b.yaml": b, "c.yaml": c})
    assert [str(e) for e in errors] == ["b.yaml: version: '8' differs from '7' in a.yaml",
                                        "c.yaml: version: missing; a.yaml says '7' and every file of "
                                        "a rule set must say the same"]


def test_without_a_version_it_is_a_hash_of_the_documents() -> None:
    docs = {"rules/a.yaml": yaml.safe_dump({"rules": [rule()]})}
    first = load_rule_set(docs).version
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 12
    assert load_rule_set(dict(docs)).version == first
    assert load_rule_set({"rules/a.yaml": docs["rules/a.yaml"] + "# a comment\n"}).version != first
    assert load_rule_set({"rules/b.yaml": docs["rules/a.yaml"]}).version != first


def test_no_documents_and_no_rules_are_errors() -> None:
    assert [e.message for e in errors_of({})] == ["no rule files"]
    assert [str(e) for e in errors_of({"a.yaml": "rules: []\n"})] == ["a.yaml: the rule set has no rules"]


# ---------------------------------------------------------------- the rule set

def test_rule_set_keeps_documents_rules_in_order_and_describes_them() -> None:
    rule_set = load_rule_set({"rules/web.yaml": GOOD})
    assert isinstance(rule_set, RuleSet)
    assert rule_set.documents == {"rules/web.yaml": GOOD}
    assert rule_set.version == "test-1"
    assert rule_set.describe() == [
        {"id": "self-service-login-prompt", "channel": "web", "action": "login_prompt",
         "file": "rules/web.yaml", "description": LOGIN_PROMPT["description"],
         "holdout_percent": 0.0, "goal": []},
        {"id": "self-service-direct-link", "channel": "web", "action": "direct_link",
         "file": "rules/web.yaml",
         "description": "logged-in customer on a self-service topic gets a link to its service page",
         "holdout_percent": 0.0, "goal": []}]


def test_a_rules_goal_is_its_own_or_else_its_stop_after_events() -> None:
    def goal_of(**fields: Any) -> frozenset[str]:
        rule_set = load_rule_set(one_rule_file(**fields))
        assert isinstance(rule_set, RuleSet)
        return rule_set.rules[0].goal

    assert goal_of(goal=["login", "signup"]) == {"login", "signup"}
    assert goal_of(caps={"stop_after": ["callback_requested"]}) == {"callback_requested"}
    assert goal_of(goal=["purchase"], caps={"stop_after": ["login"]}) == {"purchase"}
    assert goal_of() == frozenset()


def test_rule_set_is_frozen() -> None:
    rule_set = load_rule_set({"rules/web.yaml": GOOD})
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule_set.version = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rule_set.documents["rules/new.yaml"] = ""  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule_set.rules[0].value = 9  # type: ignore[misc]


def test_rules_are_indexed_by_the_event_types_they_can_fire_on() -> None:
    rule_set = load_rule_set({"r.yaml": yaml.safe_dump({"rules": [
        rule(id="views"), rule(id="logins", when={"field": "event.type", "eq": "login"}),
        rule(id="anything", when={"field": "profile.logged_in", "eq": True})]})})
    assert [r.id for r in rule_set.rules_for("page_view")] == ["views", "anything"]
    assert [r.id for r in rule_set.rules_for("login")] == ["logins", "anything"]
    assert [r.id for r in rule_set.rules_for("not-a-type")] == []


def test_rules_are_indexed_by_the_page_categories_they_name() -> None:
    rule_set = load_rule_set({"r.yaml": yaml.safe_dump({"lookups": {"pages": {"billing": {"url": "/b"}}},
                                                        "rules": [
        rule(id="any-page"),
        rule(id="billing", when={"all": [{"field": "event.type", "eq": "page_view"},
                                          {"field": "lookup.pages[event.page.category]", "exists": True}]}),
        rule(id="products", when={"field": "event.page.category", "in": ["products", "offers"]})]})})
    assert [r.id for r in rule_set.rules_for("page_view", "billing")] == ["any-page", "billing"]
    assert [r.id for r in rule_set.rules_for("page_view", "offers")] == ["any-page", "products"]
    assert [r.id for r in rule_set.rules_for("page_view", None)] == ["any-page"]
    assert [r.id for r in rule_set.rules_for("page_view")] == ["any-page"]
    assert rule_set.rules_for("page_view", "billing") is rule_set.rules_for("page_view", "billing")


def test_rule_defaults() -> None:
    [compiled] = load_rule_set(one_rule_file()).rules
    assert (compiled.value, compiled.priority, compiled.weight, compiled.propensity) == (1.0, 0, 1.0, None)
    assert (compiled.consent, compiled.cooldown_ms, compiled.cap_per) == ("service", 0, "action_and_topic")
    assert (compiled.max_per_day, compiled.max_per_week, compiled.stop_after) == (None, None, frozenset())
    assert (compiled.valid_from_ms, compiled.valid_until_ms, compiled.holdout_percent) == (None, None, 0.0)
    assert compiled.expires_after_ms == 600_000


def test_rule_set_error_is_a_value_error_with_one_line_per_problem() -> None:
    exc = RuleSetError([RuleError("a.yaml", None, None, "one"), RuleError("b.yaml", "r", "f", "two")])
    assert isinstance(exc, ValueError)
    assert str(exc) == "a.yaml: one\nb.yaml: rule 'r': f: two"


# ---------------------------------------------------------------- directories

def test_directory_loads_every_yaml_file_sorted_and_names_them_by_directory(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "b.yaml").write_text(yaml.safe_dump({"rules": [rule(id="b")]}))
    (rules / "a.yaml").write_text(yaml.safe_dump({"rules": [rule(id="a")]}))
    (rules / "README.md").write_text("# not rules")
    (rules / "schema.json").write_text("{}")
    rule_set = load_rule_directory(rules)
    assert list(rule_set.documents) == ["rules/a.yaml", "rules/b.yaml"]
    assert [r.id for r in rule_set.rules] == ["a", "b"]
    assert rule_set.version == load_rule_set(dict(rule_set.documents)).version


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="not a directory of rule files"):
        load_rule_directory(tmp_path / "missing")
    with pytest.raises(RuleSetError, match=r"no \*\.yaml rule files"):
        load_rule_directory(tmp_path)
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(RuleSetError, match=r"bad\.yaml: not UTF-8: byte 0xff at offset 0"):
        load_rule_directory(tmp_path)
