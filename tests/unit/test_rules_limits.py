"""Hostile rule sets: each is refused fast, as a RuleSetError naming the file, rule and field.

The samples are the ones that stopped or crashed the loader: YAML aliases of aliases ("billion
laughs"), conditions nested hundreds deep, an alias inside the node it names, a NUL byte,
invalid UTF-8 and a 5,000-digit number; then the size limits, and fuzzing of the shipped files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.core.rules import RuleError, RuleSet, RuleSetError, load_rule_directory, load_rule_set
from orchestrator.core.rules.limits import (
    MAX_CONDITION_DEPTH,
    MAX_FILE_BYTES,
    MAX_REPORTED_PROBLEMS,
    MAX_RULE_SET_BYTES,
    MAX_RULES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
)

from .factories import RULES_DIR

FILE = "rules/hostile.yaml"
# Far below the minutes the samples took before the limits; the measured times are a few ms.
FAST_S = 0.5
# For sets that reach a size limit by their own text (50,000 real YAML nodes are read before the
# node limit is hit: about half a second on a small machine).
AT_A_LIMIT_S = 3.0

RULE_HEAD = """rules:
  - id: {id}
    description: a hostile rule
    channel: web
    action: nudge
"""
WHEN = "    when: {field: event.type, eq: page_view}\n"


def refused(documents: dict[str, str | bytes], within_s: float = FAST_S) -> list[RuleError]:
    """The problems of ``documents``, which must be refused as a RuleSetError, fast."""
    started = time.perf_counter()
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(documents)
    elapsed = time.perf_counter() - started
    assert elapsed < within_s, f"took {elapsed:.3f} s"
    return caught.value.errors


def only(errors: list[RuleError]) -> RuleError:
    assert len(errors) == 1, errors
    return errors[0]


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """A rule whose payload holds ``levels`` of lists of ``width`` aliases of the level below."""
    lines = [RULE_HEAD.format(id="laughs") + WHEN + "    payload:",
             "      l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"      l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * width) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the hostile samples

def test_billion_laughs_of_a_few_hundred_bytes_is_refused_in_milliseconds_naming_rule_and_field() -> None:
    text = billion_laughs()
    assert 600 <= len(text) <= 700  # the size of the sample that took 72 s
    error = only(refused({FILE: text}))
    assert (error.file, error.rule) == (FILE, "laughs")
    assert error.field is not None and error.field.startswith("payload.l")
    assert f"more than {MAX_YAML_NODES} YAML nodes" in error.message


def test_aliases_of_aliases_at_the_top_of_a_file_are_refused_too() -> None:
    text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 9)) + "rules: []\n"
    error = only(refused({FILE: text}))
    assert error.rule is None and error.field is not None and error.field.startswith("a")


@pytest.mark.parametrize("combinator", ["all", "any", "not"])
def test_conditions_nested_hundreds_deep_are_a_rule_set_error_not_a_recursion_error(combinator: str) -> None:
    condition = "{field: event.type, eq: page_view}"
    for _ in range(300):
        condition = f"{{not: {condition}}}" if combinator == "not" else f"{{{combinator}: [{condition}]}}"
    error = only(refused({FILE: RULE_HEAD.format(id="deep") + f"    when: {condition}\n"}))
    assert (error.file, error.rule) == (FILE, "deep")
    assert error.field is not None and error.field.startswith(f"when.{combinator}")
    assert f"nested more than {MAX_YAML_DEPTH} levels deep" in error.message


def nested_condition(depth: int) -> str:
    """all / any / not around a field condition, ``depth`` of them."""
    condition = "{field: event.type, eq: page_view}"
    for level in range(depth):
        kind = ("all", "any", "not")[level % 3]
        condition = f"{{not: {condition}}}" if kind == "not" else f"{{{kind}: [{condition}]}}"
    return condition


def test_conditions_may_nest_up_to_the_limit_and_not_one_level_more() -> None:
    at_limit = RULE_HEAD.format(id="deep") + f"    when: {nested_condition(MAX_CONDITION_DEPTH)}\n"
    assert [r.id for r in load_rule_set({FILE: at_limit}).rules] == ["deep"]
    error = only(refused({FILE: RULE_HEAD.format(id="deep")
                          + f"    when: {nested_condition(MAX_CONDITION_DEPTH + 1)}\n"}))
    assert error.rule == "deep"
    assert error.field is not None and error.field.startswith("when.")
    assert f"nested more than {MAX_CONDITION_DEPTH} levels deep" in error.message


def test_yaml_nested_thousands_deep_is_refused() -> None:
    error = only(refused({FILE: "rules: " + "[" * 5000 + "]" * 5000}))
    assert error.file == FILE
    assert "nest" in error.message


def test_an_alias_inside_the_node_it_names_is_refused_naming_rule_and_field() -> None:
    text = RULE_HEAD.format(id="self-ref") + WHEN + "    payload: &me {me: *me}\n"
    error = only(refused({FILE: text}))
    assert (error.rule, error.field) == ("self-ref", "payload.me")
    assert "alias *me is inside the node it names (a cycle)" in error.message


def test_a_self_referencing_list_outside_the_rules_is_refused() -> None:
    error = only(refused({FILE: "loop: &loop [*loop]\nrules: []\n"}))
    assert (error.rule, error.field) == (None, "loop[0]")


def test_a_nul_byte_is_refused_naming_rule_field_line_and_column() -> None:
    text = RULE_HEAD.format(id="nul").replace("a hostile rule", '"a hostile\x00 rule"') + WHEN
    error = only(refused({FILE: text}))
    assert (error.file, error.rule, error.field) == (FILE, "nul", "description")
    assert "character U+0000 is not allowed in YAML (line 3, column 28)" in error.message


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f", "\ufffe"])
def test_characters_yaml_does_not_allow_are_refused_wherever_they_are(character: str) -> None:
    text = RULE_HEAD.format(id="ctl") + WHEN.replace("page_view", f"page{character}view")
    error = only(refused({FILE: text}))
    assert (error.rule, error.field) == ("ctl", "when.eq")
    assert f"U+{ord(character):04X}" in error.message


def test_a_lone_surrogate_in_the_text_is_refused() -> None:
    error = only(refused({FILE: RULE_HEAD.format(id="s") + WHEN.replace("page_view", "\ud800")}))
    assert "lone surrogate U+D800" in error.message


def test_invalid_utf8_is_refused_saying_where() -> None:
    text = (RULE_HEAD.format(id="bytes") + WHEN).encode().replace(b"hostile", b"host\xffile")
    error = only(refused({FILE: text}))
    assert (error.file, error.rule) == (FILE, None)
    assert "not UTF-8: byte 0xff at offset" in error.message and "(line 3)" in error.message


def test_invalid_utf8_in_a_directory_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(RULE_HEAD.format(id="ok") + WHEN)
    (tmp_path / "bad.yaml").write_bytes(b"rules: [\xc3\x28]\n")
    with pytest.raises(RuleSetError) as caught:
        load_rule_directory(tmp_path)
    error = only(caught.value.errors)
    assert error.file == f"{tmp_path.name}/bad.yaml"
    assert "not UTF-8" in error.message


def test_a_5000_digit_priority_is_refused_naming_rule_and_field() -> None:
    text = RULE_HEAD.format(id="big") + WHEN + "    priority: " + "9" * 5000 + "\n"
    error = only(refused({FILE: text}))
    assert (error.rule, error.field) == ("big", "priority")
    assert "a number of 5000 characters; at most 32 are allowed" in error.message


@pytest.mark.parametrize("number", ["1" + "0" * 400 + ".5", "-" + "7" * 40, "0x" + "f" * 40, "1e" + "9" * 40])
def test_other_overlong_numbers_are_refused(number: str) -> None:
    error = only(refused({FILE: RULE_HEAD.format(id="n") + WHEN + f"    value: {number}\n"}))
    assert (error.rule, error.field) == ("n", "value")


# ---------------------------------------------------------------- sizes

def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    text = RULE_HEAD.format(id="big") + WHEN + "    payload: {blob: '" + "x" * MAX_FILE_BYTES + "'}\n"
    error = only(refused({FILE: text}))
    assert (error.file, error.rule) == (FILE, None)
    assert f"may have at most {MAX_FILE_BYTES}" in error.message


def test_an_oversized_file_in_a_directory_is_not_even_read(tmp_path: Path) -> None:
    (tmp_path / "huge.yaml").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(RuleSetError, match=f"huge.yaml: {MAX_FILE_BYTES + 1} bytes; a rule file"):
        load_rule_directory(tmp_path)


def test_a_set_over_the_size_limit_is_refused() -> None:
    per_file = MAX_FILE_BYTES - 1024
    files = MAX_RULE_SET_BYTES // per_file + 1
    documents: dict[str, str | bytes] = {
        f"rules/f{n}.yaml": RULE_HEAD.format(id=f"r{n}") + WHEN + "# " + "x" * per_file + "\n"
        for n in range(files)}
    error = only(refused(documents))
    assert f"a rule set (all files) may have at most {MAX_RULE_SET_BYTES}" in error.message


def test_more_than_the_allowed_rules_are_refused_without_compiling_them() -> None:
    one = ("  - {{id: r{n}, description: d, channel: web, action: nudge, "
           "when: {{field: event.type, eq: page_view}}}}\n")
    at_limit = "rules:\n" + "".join(one.format(n=n) for n in range(MAX_RULES))
    assert len(load_rule_set({FILE: at_limit}).rules) == MAX_RULES
    error = only(refused({FILE: at_limit + one.format(n=MAX_RULES)}, AT_A_LIMIT_S))
    assert (error.rule, error.field) == (None, "rules")
    assert f"{MAX_RULES + 1} rules in the set; at most {MAX_RULES} are allowed" in error.message


def test_more_yaml_nodes_than_allowed_are_refused_even_without_aliases() -> None:
    error = only(refused({FILE: "rules: []\nnoise: [" + "1," * MAX_YAML_NODES + "]\n"}, AT_A_LIMIT_S))
    assert error.field is not None and error.field.startswith("noise[")


def test_the_node_budget_is_for_the_whole_set_not_per_file() -> None:
    half = "rules: []\nnoise: [" + "1," * (MAX_YAML_NODES // 2) + "]\n"
    errors = refused({"rules/a.yaml": half, "rules/b.yaml": half}, AT_A_LIMIT_S)
    assert [e.file for e in errors if "YAML nodes" in e.message] == ["rules/b.yaml"]


def test_at_most_so_many_problems_are_listed_and_the_rest_counted() -> None:
    bad = "rules:\n" + "".join(f"  - {{id: r{n}}}\n" for n in range(MAX_RULES))
    errors = refused({FILE: bad}, AT_A_LIMIT_S)
    assert len(errors) == MAX_REPORTED_PROBLEMS + 1
    assert errors[-1].message.startswith("and ") and errors[-1].message.endswith(" more problems")


def test_a_problem_quoting_huge_text_is_still_one_short_line() -> None:
    text = RULE_HEAD.format(id="long") + '    when: {field: "event.' + "a." * 50_000 + 'b", eq: x}\n'
    error = only(refused({FILE: text}))
    assert (error.rule, error.field) == ("long", "when.field")
    assert error.message.startswith("unknown field 'event.a.a.") and error.message.endswith("…")
    assert len(str(error)) < 1100


# ---------------------------------------------------------------- nothing else escapes

def test_a_failure_of_the_checks_themselves_is_still_a_rule_set_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.core.rules import loader

    def broken(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(loader, "compile_condition", broken)
    error = only(refused({FILE: RULE_HEAD.format(id="r") + WHEN}))
    assert "could not be checked (RecursionError" in error.message


@pytest.mark.parametrize("documents", [{}, {"": "rules: []"}, {FILE: 42}, {FILE: None}, {3: "rules: []"}])
def test_documents_of_the_wrong_shape_are_a_rule_set_error(documents: dict) -> None:
    refused(documents)


def shipped_files() -> dict[str, str]:
    return {f"rules/{p.name}": p.read_text() for p in sorted(RULES_DIR.glob("*.yaml"))}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_shipped_files_mutated_anyhow_load_or_are_refused_and_nothing_else(data: st.DataObject) -> None:
    documents = shipped_files()
    name = data.draw(st.sampled_from(sorted(documents)), label="file")
    text = documents[name]
    at = data.draw(st.integers(0, len(text)), label="at")
    cut = data.draw(st.integers(0, 40), label="cut")
    inserted = data.draw(st.text(max_size=40) | st.sampled_from(
        ["&a ", "*a", "<<: *a", "\x00", "[" * 200, "{all: [" * 100, "9" * 5000, "!!binary x",
         "!!python/object:os.system", "? [a, b]\n: c", "\t", "'", '"']), label="inserted")
    documents[name] = text[:at] + inserted + text[at + cut:]
    started = time.perf_counter()
    try:
        assert isinstance(load_rule_set(documents), RuleSet)
    except RuleSetError as exc:
        assert exc.errors and all(isinstance(e, RuleError) and e.file for e in exc.errors)
    assert time.perf_counter() - started < 2 * FAST_S


@settings(max_examples=200, deadline=None)
@given(value=st.binary(max_size=300) | st.text(max_size=300))
def test_any_bytes_or_text_load_or_are_refused_and_nothing_else(value: bytes | str) -> None:
    try:
        load_rule_set({FILE: value})
    except RuleSetError as exc:
        assert exc.errors


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(rules=st.lists(st.dictionaries(st.sampled_from(
    ["id", "description", "channel", "action", "when", "payload", "caps", "priority", "value",
     "valid_from", "holdout_percent", "already_there"]), yaml_values, max_size=8), max_size=4))
def test_any_yaml_shaped_rules_load_or_are_refused_and_nothing_else(rules: list) -> None:
    try:
        load_rule_set({FILE: yaml.safe_dump({"rules": rules}, allow_unicode=True)})
    except RuleSetError as exc:
        assert exc.errors
