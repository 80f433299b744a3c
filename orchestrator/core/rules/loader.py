"""Loading a rule set: YAML documents in, a checked and compiled :class:`RuleSet` out.

Everything is checked before anything is used, and every problem is reported, not just the
first: YAML syntax, duplicate keys (which YAML would silently overwrite), unknown keys, types
and ranges, operators and paths of conditions, templates, lookups, channels and consent
categories, caps, validity windows, rule ids unique across files, and one version for all
files. :class:`RuleSetError` carries the list.

A rule set is input from people and other tools, so its size is bounded (:mod:`.limits`: file
and set bytes, YAML nodes with aliases expanded, nesting, condition depth, rules, number
lengths) and checked before the costly work; nothing but :class:`RuleSetError` leaves
:func:`load_rule_set` or :func:`load_rule_directory`, whatever the input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.core.rules.conditions import Env, categories_of, compile_condition, event_types_of
from orchestrator.core.rules.errors import RuleError, RuleSetError, all_model_keys, join, show, translate
from orchestrator.core.rules.limits import (
    MAX_FILE_BYTES,
    MAX_REPORTED_PROBLEMS,
    MAX_RULE_SET_BYTES,
    MAX_RULES,
)
from orchestrator.core.rules.model import Caps, Rule, RuleFileHeader, iso_ms
from orchestrator.core.rules.ruleset import Rule as CompiledRule
from orchestrator.core.rules.ruleset import RuleSet
from orchestrator.core.rules.templates import compile_payload
from orchestrator.core.rules.yaml_text import NodeBudget, RuleFileLoader, YamlLimitError, character_problem

_FILE_KEYS = all_model_keys([RuleFileHeader])
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _rule_keys(loc: tuple) -> list[str]:
    return all_model_keys([Caps] if loc[:1] == ("caps",) else [Rule])


def load_rule_directory(path: Path) -> RuleSet:
    """Load every ``*.yaml`` file of ``path`` (sorted by name) as one rule set.

    Documents are named ``<directory name>/<file name>`` (``rules/web.yaml``), so errors and the
    content-hash version do not depend on where the directory is.
    """
    path = Path(path)
    try:
        if not path.is_dir():
            raise RuleSetError([RuleError(str(path), None, None, "not a directory of rule files")])
        files = sorted(p for p in path.glob("*.yaml") if p.is_file())
        prefix = path.resolve().name
    except OSError as exc:
        raise RuleSetError([RuleError(str(path), None, None, f"cannot be read: {exc}")]) from None
    if not files:
        raise RuleSetError([RuleError(str(path), None, None, "no *.yaml rule files in it")])
    documents: dict[str, bytes] = {}
    problems = []
    for file in files:
        name = f"{prefix}/{file.name}"
        read = read_bytes(file, name)
        if isinstance(read, RuleError):
            problems.append(read)
        else:
            documents[name] = read
    if problems:
        raise RuleSetError(problems)
    return load_rule_set(documents)


def load_rule_file(path: Path) -> RuleSet:
    """Load one YAML file as a rule set (named by its path as given)."""
    read = read_bytes(Path(path), str(path))
    if isinstance(read, RuleError):
        raise RuleSetError([read])
    return load_rule_set({str(path): read})


def read_bytes(file: Path, name: str) -> bytes | RuleError:
    """The file's bytes, or the problem: unreadable, or over MAX_FILE_BYTES (not read then)."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            return RuleError(name, None, None, _too_big(size, MAX_FILE_BYTES, "a rule file"))
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return RuleError(name, None, None, f"cannot be read: {exc}")
    if len(data) > MAX_FILE_BYTES:  # it grew since stat
        return RuleError(name, None, None, _too_big(len(data), MAX_FILE_BYTES, "a rule file"))
    return data


def _too_big(size: int, limit: int, what: str) -> str:
    return f"{size} bytes; {what} may have at most {limit} ({limit // 1024} KiB)"


def load_rule_set(documents: Mapping[str, str | bytes]) -> RuleSet:
    """Check and compile ``documents`` (file name -> YAML text, or its UTF-8 bytes) into a rule
    set.

    Raises :class:`RuleSetError` listing every problem when anything is wrong, and nothing else:
    a failure of the checks themselves is reported as a problem of the set too.

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
    try:
        return _load_rule_set(documents)
    except RuleSetError:
        raise
    except Exception as exc:  # a defect of the checks: still a refusal, never a crash
        raise RuleSetError([RuleError("<rule set>", None, None,
                                      f"could not be checked ({type(exc).__name__}: "
                                      f"{str(exc)[:200]}); this is a bug of the rule checks")]) from exc


def refuse(errors: list[RuleError]) -> RuleSetError:
    if len(errors) > MAX_REPORTED_PROBLEMS:
        more = len(errors) - MAX_REPORTED_PROBLEMS
        errors = [*errors[:MAX_REPORTED_PROBLEMS],
                  RuleError("<rule set>", None, None, f"and {more} more problems")]
    return RuleSetError(errors)


def _load_rule_set(documents: Mapping[str, str | bytes]) -> RuleSet:
    errors: list[RuleError] = []
    if not isinstance(documents, Mapping) or not documents:
        raise RuleSetError([RuleError("<rule set>", None, None, "no rule files")])
    texts, files = read_file_set(documents, _read_file, errors)
    total_rules = sum(len(header.rules) for _, header in files)
    if total_rules > MAX_RULES:
        errors.append(RuleError(", ".join(name for name, _ in files), None, "rules",
                                f"{total_rules} rules in the set; at most {MAX_RULES} are allowed"))
        raise refuse(errors)

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

    version = set_version(texts, files, errors)

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
        errors.append(RuleError(", ".join(sorted(texts)), None, None,
                                "the rule set has no rules"))
    if errors:
        raise refuse(errors)
    return RuleSet(version=version, rules=tuple(rules),
                   documents=MappingProxyType(dict(sorted(texts.items()))),
                   lookups=MappingProxyType(lookups))


# ------------------------------------------------------------------ files

Header = TypeVar("Header")


def read_file_set(documents: Mapping[Any, Any],
                  read_file: Callable[[str, str, list[RuleError], NodeBudget], Header | None],
                  errors: list[RuleError]) -> tuple[dict[str, str], list[tuple[str, Header]]]:
    """The texts of a set of YAML files (rules or journeys) and each file's header, in name
    order, read with one node budget for the whole set; a file set with a problem in its
    names, encodings or sizes is refused at once, the problems of single files are added to
    ``errors`` (their files left out)."""
    texts = file_texts(documents, errors)
    if errors:
        raise refuse(errors)
    budget = NodeBudget()
    files: list[tuple[str, Header]] = []
    for name in sorted(texts):
        header = read_file(name, texts[name], errors, budget)
        if header is not None:
            files.append((name, header))
    return texts, files


def file_texts(documents: Mapping[Any, Any], errors: list[RuleError]) -> dict[str, str]:
    """File name -> text, each checked for type, encoding and size, and the set for size."""
    texts: dict[str, str] = {}
    total = 0
    for name, value in documents.items():
        if not isinstance(name, str) or not name:
            errors.append(RuleError("<rule set>", None, None,
                                    f"a file name must be text, got {show(name)}"))
            continue
        if isinstance(value, bytes | bytearray):
            size = len(value)
            if size > MAX_FILE_BYTES:
                errors.append(RuleError(name, None, None, _too_big(size, MAX_FILE_BYTES, "a rule file")))
                continue
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                line = value.count(b"\n", 0, exc.start) + 1
                errors.append(RuleError(name, None, None,
                                        f"not UTF-8: byte 0x{value[exc.start]:02x} at offset "
                                        f"{exc.start} (line {line}) {exc.reason}"))
                continue
        elif isinstance(value, str):
            size = len(value.encode("utf-8", "surrogatepass"))
            surrogate = _LONE_SURROGATE.search(value)
            if surrogate is not None:
                errors.append(RuleError(name, None, None,
                                        f"not text: a lone surrogate U+{ord(surrogate.group()):04X} "
                                        f"at character {surrogate.start()}"))
                continue
            if size > MAX_FILE_BYTES:
                errors.append(RuleError(name, None, None, _too_big(size, MAX_FILE_BYTES, "a rule file")))
                continue
        else:
            errors.append(RuleError(name, None, None,
                                    f"expected the YAML text, got {type(value).__name__}"))
            continue
        total += size
        texts[name] = value
    if total > MAX_RULE_SET_BYTES:
        errors.append(RuleError(", ".join(sorted(texts)), None, None,
                                _too_big(total, MAX_RULE_SET_BYTES, "a rule set (all files)")))
    return texts


def parse_yaml_file(name: str, text: str, budget: NodeBudget, errors: list[RuleError],
                    error: Callable[[str], RuleError]) -> tuple[Any, Node | None] | None:
    """The document of a YAML file (rules or journeys) and its node tree, parsed within the set's
    node ``budget`` and the YAML limits; None when it does not parse (the problem, made with
    ``error`` or naming the limit, added to ``errors``)."""
    loader: RuleFileLoader | None = None
    try:
        loader = RuleFileLoader(text, budget)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except YamlLimitError as exc:
        errors.append(limit_error(name, exc))
        return None
    except yaml.YAMLError as exc:
        errors.append(error(f"not valid YAML: {yaml_problem(exc)}"))
        return None
    finally:
        if loader is not None:
            loader.dispose()
    return data, node


def _read_file(name: str, text: str, errors: list[RuleError],
               budget: NodeBudget) -> RuleFileHeader | None:
    bad_character = character_problem(text)
    if bad_character is not None:
        rule, field = _rule_and_field(bad_character.place, bad_character.rule_ids)
        errors.append(RuleError(name, rule, field, f"not valid YAML: {bad_character.message}"))
        return None
    parsed = parse_yaml_file(name, text, budget, errors, lambda problem: RuleError(name, None, None, problem))
    if parsed is None:
        return None
    data, node = parsed
    if data is None:
        errors.append(RuleError(name, None, None, "the file is empty; expected rules: [...]"))
        return None
    if not isinstance(data, dict):
        errors.append(RuleError(name, None, None,
                                f"expected a mapping with rules: [...], got {show(data)}"))
        return None
    duplicates = list(duplicate_keys(node))
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


def limit_error(name: str, exc: YamlLimitError) -> RuleError:
    """A limit's error at its place: in the rule it is in when that rule's id was read."""
    rule, field = _rule_and_field(exc.place, exc.rule_ids)
    return RuleError(name, rule, field, f"{exc.message} (line {exc.line})")


def _rule_and_field(place: tuple, rule_ids: Mapping[int, str]) -> tuple[str | None, str | None]:
    """(rule id, field) of a place in a file: inside a rule when its id is known."""
    rule = None
    if len(place) >= 2 and place[0] == "rules" and isinstance(place[1], int):
        rule = rule_ids.get(place[1])
        if rule is not None:
            place = place[2:]
    return rule, _short_field(place) or None


def _short_field(place: tuple, most: int = 8) -> str:
    """The field of a place, its first steps only when it is deep (``when.all[0]…``)."""
    field = join("", *place[:most])
    return field + ("…" if len(place) > most else "")


def yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def duplicate_keys(node: Node | None, path: tuple = ()) -> Iterator[tuple[tuple, str, int, int]]:
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None and key in seen:
                yield path, key, line, seen[key]
            elif key is not None:
                seen[key] = line
            yield from duplicate_keys(value_node, (*path, key))
    elif isinstance(node, SequenceNode):
        for index, child in enumerate(node.value):
            yield from duplicate_keys(child, (*path, index))


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


def set_version(documents: Mapping[str, str], files: list[tuple[str, RuleFileHeader]],
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
        if path is not None and path.value_type not in ("text", "any"):
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
        goal=frozenset(spec.goal or caps.stop_after),
        event_types=event_types_of(raw["when"]),
        categories=categories_of(raw["when"], lookups),
        condition=condition,
        render_payload=render if render is not None else (lambda ctx: {}),
        already_there=already_there,
    )
