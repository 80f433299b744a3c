"""Loading a rule set: YAML documents in, a checked and compiled :class:`RuleSet` out.

Everything is checked before anything is used, and every problem is reported, not just the
first: YAML syntax, duplicate keys (which YAML would silently overwrite), unknown keys, types
and ranges, operators and paths of conditions, templates, lookups, channels and consent
categories, caps, validity windows, rule ids unique across files, and one version for all
files. :class:`RuleSetError` carries the list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.core.rules.conditions import Env, categories_of, compile_condition, event_types_of
from orchestrator.core.rules.errors import RuleError, RuleSetError, all_model_keys, join, show, translate
from orchestrator.core.rules.model import Caps, Rule, RuleFileHeader, iso_ms
from orchestrator.core.rules.ruleset import Rule as CompiledRule
from orchestrator.core.rules.ruleset import RuleSet
from orchestrator.core.rules.templates import compile_payload

_FILE_KEYS = all_model_keys([RuleFileHeader])


def _rule_keys(loc: tuple) -> list[str]:
    return all_model_keys([Caps] if loc[:1] == ("caps",) else [Rule])


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, except that times stay text (the rules parse them themselves)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_rule_directory(path: Path) -> RuleSet:
    """Load every ``*.yaml`` file of ``path`` (sorted by name) as one rule set.

    Documents are named ``<directory name>/<file name>`` (``rules/web.yaml``), so errors and the
    content-hash version do not depend on where the directory is.
    """
    path = Path(path)
    if not path.is_dir():
        raise RuleSetError([RuleError(str(path), None, None, "not a directory of rule files")])
    files = sorted(p for p in path.glob("*.yaml") if p.is_file())
    if not files:
        raise RuleSetError([RuleError(str(path), None, None, "no *.yaml rule files in it")])
    prefix = path.resolve().name
    documents: dict[str, str] = {}
    problems = []
    for file in files:
        name = f"{prefix}/{file.name}"
        try:
            documents[name] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(RuleError(name, None, None, f"cannot be read: {exc}"))
    if problems:
        raise RuleSetError(problems)
    return load_rule_set(documents)


def load_rule_set(documents: Mapping[str, str]) -> RuleSet:
    """Check and compile ``documents`` (file name -> YAML text) into a rule set.

    Raises :class:`RuleSetError` listing every problem when anything is wrong.

    >>> rules = load_rule_set({"rules/a.yaml": '''
    ... rules:
    ...   - id: hello
    ...     description: greet a visitor on the home page
    ...     channel: web
    ...     action: greeting
    ...     when: {field: event.page.category, eq: home}
    ... '''})
    >>> rules.version, [r.id for r in rules.rules]  # doctest: +ELLIPSIS
    ('sha256:...', ['hello'])
    """
    errors: list[RuleError] = []
    if not documents:
        raise RuleSetError([RuleError("<rule set>", None, None, "no rule files")])
    files: list[tuple[str, RuleFileHeader]] = []
    for name in sorted(documents):
        header = _read_file(name, documents[name], errors)
        if header is not None:
            files.append((name, header))

    lookups: dict[str, dict[str, Any]] = {}
    lookup_files: dict[str, str] = {}
    for name, header in files:
        for lookup, table in header.lookups.items():
            if lookup in lookups:
                errors.append(RuleError(name, None, f"lookups.{lookup}",
                                        f"lookup '{lookup}' is also defined in {lookup_files[lookup]}"))
                continue
            lookups[lookup] = dict(table)
            lookup_files[lookup] = name

    version = _version(documents, files, errors)

    rules: list[CompiledRule] = []
    defined_in: dict[str, str] = {}
    for name, header in files:
        for index, raw in enumerate(header.rules):
            rule = _compile_rule(name, index, raw, lookups, errors)
            if rule is None:
                continue
            if rule.id in defined_in:
                errors.append(RuleError(name, rule.id, "id",
                                        f"the id is already used by a rule in {defined_in[rule.id]}"))
                continue
            defined_in[rule.id] = name
            rules.append(rule)
    if not errors and not rules:
        errors.append(RuleError(", ".join(sorted(documents)), None, None,
                                "the rule set has no rules"))
    if errors:
        raise RuleSetError(errors)
    return RuleSet(version=version, rules=tuple(rules),
                   documents=MappingProxyType(dict(sorted(documents.items()))),
                   lookups=MappingProxyType(lookups))


# ------------------------------------------------------------------ files

def _read_file(name: str, text: Any, errors: list[RuleError]) -> RuleFileHeader | None:
    if not isinstance(text, str):
        errors.append(RuleError(name, None, None, f"expected the YAML text, got {type(text).__name__}"))
        return None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        errors.append(RuleError(name, None, None, f"not valid YAML: {_yaml_problem(exc)}"))
        return None
    finally:
        loader.dispose()
    if data is None:
        errors.append(RuleError(name, None, None, "the file is empty; expected rules: [...]"))
        return None
    if not isinstance(data, dict):
        errors.append(RuleError(name, None, None,
                                f"expected a mapping with rules: [...], got {show(data)}"))
        return None
    duplicates = list(_duplicate_keys(node))
    for path, key, line, first in duplicates:
        rule, field = _locate(data, (*path, key))
        errors.append(RuleError(name, rule, field, f"duplicate key on line {line} (first on line "
                                                   f"{first}); YAML would keep only the last"))
    try:
        header = RuleFileHeader.model_validate(data)
    except ValidationError as exc:
        for loc, message in translate(exc, _FILE_KEYS):
            rule, field = _locate(data, loc)
            errors.append(RuleError(name, rule, field, message))
        return None
    return None if duplicates else header


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def _duplicate_keys(node: Node | None, path: tuple = ()) -> Iterator[tuple[tuple, str, int, int]]:
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None and key in seen:
                yield path, key, line, seen[key]
            elif key is not None:
                seen[key] = line
            yield from _duplicate_keys(value_node, (*path, key))
    elif isinstance(node, SequenceNode):
        for index, child in enumerate(node.value):
            yield from _duplicate_keys(child, (*path, index))


def _rule_id(raw: Any) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return raw["id"]
    return None


def _locate(data: Any, loc: tuple) -> tuple[str | None, str]:
    """(rule id, field) for a location in a file: inside a rule when it starts rules[i]."""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = data.get("rules") if isinstance(data, dict) else None
        raw = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
        rule = _rule_id(raw)
        if rule is not None:
            return rule, join("", *loc[2:])
    return None, join("", *loc)


def _version(documents: Mapping[str, str], files: list[tuple[str, RuleFileHeader]],
             errors: list[RuleError]) -> str:
    stated = [(name, header.version) for name, header in files if header.version is not None]
    if not stated:
        digest = hashlib.sha256()
        for name in sorted(documents):
            text = documents[name]
            digest.update(f"{name}\0{text if isinstance(text, str) else ''}\0".encode())
        return f"sha256:{digest.hexdigest()[:12]}"
    first_file, version = stated[0]
    for name, header in files:
        if header.version is None:
            errors.append(RuleError(name, None, "version",
                                    f"missing; {first_file} says '{version}' and every file of a "
                                    f"rule set must say the same"))
        elif header.version != version:
            errors.append(RuleError(name, None, "version",
                                    f"'{header.version}' differs from '{version}' in {first_file}"))
    return version  # type: ignore[return-value]


# ------------------------------------------------------------------ rules

def _compile_rule(file: str, index: int, raw: Any, lookups: Mapping[str, Mapping[str, Any]],
                  errors: list[RuleError]) -> CompiledRule | None:
    rule_id = _rule_id(raw)
    prefix = "" if rule_id is not None else f"rules[{index}]"

    def report(field: str, message: str) -> None:
        errors.append(RuleError(file, rule_id, join(prefix, field) if field else prefix or None,
                                message))

    if not isinstance(raw, dict):
        report("", f"a rule is a mapping with id, description, channel, action and when; "
                   f"got {show(raw)}")
        return None
    spec: Rule | None = None
    try:
        spec = Rule.model_validate(raw)
    except ValidationError as exc:
        for loc, message in translate(exc, _rule_keys):
            report(join("", *loc), message)

    env = Env(lookups=lookups)
    condition = compile_condition(raw["when"], "when", env) if "when" in raw else None
    payload = raw.get("payload")
    render = compile_payload(payload, "payload", env) if isinstance(payload, dict) else None
    already_there = None
    if isinstance(raw.get("already_there"), str):
        path = env.path(raw["already_there"], "already_there")
        if path is not None and path.kind not in ("text", "any"):
            env.error("already_there", f"{path.text} is not a URL")
        already_there = path.get if path is not None else None
    if spec is not None and spec.valid_from and spec.valid_until \
            and iso_ms(spec.valid_from) >= iso_ms(spec.valid_until):
        env.error("valid_until", f"{spec.valid_until} is not after valid_from {spec.valid_from}")
    for field, message in env.problems:
        report(field, message)
    if spec is None or env.problems or condition is None:
        return None
    caps = spec.caps
    return CompiledRule(
        id=spec.id, file=file, description=spec.description, channel=spec.channel,
        action=spec.action, value=spec.value, priority=spec.priority, weight=spec.weight,
        propensity=spec.propensity, consent=spec.consent,
        cooldown_ms=caps.cooldown_s * 1000, max_per_day=caps.max_per_day,
        max_per_week=caps.max_per_week, stop_after=frozenset(caps.stop_after), cap_per=caps.per,
        valid_from_ms=iso_ms(spec.valid_from) if spec.valid_from else None,
        valid_until_ms=iso_ms(spec.valid_until) if spec.valid_until else None,
        holdout_percent=spec.holdout_percent, expires_after_ms=spec.expires_after_s * 1000,
        event_types=event_types_of(raw["when"]),
        categories=categories_of(raw["when"], lookups),
        condition=condition,
        render_payload=render if render is not None else (lambda ctx: {}),
        already_there=already_there,
    )
