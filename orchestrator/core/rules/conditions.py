"""Conditions: a rule's ``when`` tree, checked and compiled into closures when the set loads.

Each node is one mapping with one of the keys ``all``, ``any``, ``not`` (combinators),
``field`` (compare a field), ``count`` (how many events of a kind), ``since`` (time since an
event or action) or ``score`` (an intent model's probability). :func:`compile_condition`
validates the node with its model in :mod:`.model`, checks the paths and the types of the
compared values, and returns a function ``RuleInputs -> bool``. Problems are collected in
:class:`Env` with the place they are at (``when.all[1].gte``); compiling goes on after one so
that a load reports every problem at once. No rule text is ever evaluated as code.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from orchestrator.core.events import EVENT_TYPES, Source
from orchestrator.core.profile import EVENT_TIMES_PER_TYPE, RECENT_PAGES, queries
from orchestrator.core.rules.errors import all_model_keys, join, show, translate
from orchestrator.core.rules.limits import MAX_CONDITION_DEPTH
from orchestrator.core.rules.model import (
    CONDITION_MODELS,
    CountCondition,
    CountSpec,
    FieldCondition,
    LookupKeys,
    ScoreCondition,
    SinceCondition,
)
from orchestrator.core.rules.paths import MISSING, CompiledPath, Getter, PathError, RuleInputs, compile_path

Condition = Callable[[RuleInputs], bool]



def _keys_at(model: type) -> Callable[[tuple], list[str]]:
    def keys(loc: tuple) -> list[str]:
        if loc[:1] == ("count",):
            return all_model_keys([LookupKeys] if "category_in" in loc or "category_not_in" in loc
                                  else [CountSpec])
        return all_model_keys([model])

    return keys

_NUMERIC = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_VALUE_TYPE_WORDS = {"text": "text", "number": "a number", "bool": "true or false",
               "mapping": "a lookup entry (a mapping)", "any": "any value"}
_KNOWN_VALUES = {"event.type": EVENT_TYPES, "event.source": tuple(s.value for s in Source)}


@dataclass(slots=True)
class Env:
    """What compiling one rule needs and finds: lookups, its named counts, its problems."""

    lookups: Mapping[str, Mapping[str, Any]]
    problems: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, Getter] = field(default_factory=dict)
    #: all / any / not around the condition being compiled.
    depth: int = 0

    def error(self, where: str, message: str) -> None:
        self.problems.append((where, message))

    def path(self, text: Any, where: str, *, counts: bool = False) -> CompiledPath | None:
        try:
            return compile_path(text, lookups=self.lookups, counts=self.counts if counts else None)
        except PathError as exc:
            self.error(where, str(exc))
            return None


def _never(ctx: RuleInputs) -> bool:
    return False


def compile_condition(node: Any, where: str, env: Env) -> Condition:
    """Check ``node`` (found at ``where``) and return it compiled."""
    if not isinstance(node, dict):
        env.error(where, f"a condition is a mapping such as {{field: event.type, eq: page_view}}"
                         f", got {show(node)}")
        return _never
    kinds = [k for k in CONDITION_MODELS if k in node]
    if not kinds:
        env.error(where, f"a condition needs one of {', '.join(CONDITION_MODELS)}; "
                         f"got {', '.join(map(str, node)) or 'nothing'}")
        return _never
    if len(kinds) > 1:
        env.error(where, f"'{kinds[0]}' and '{kinds[1]}' in one condition; "
                         f"put each in its own and combine them with all: [...]")
        return _never
    kind = kinds[0]
    try:
        spec = CONDITION_MODELS[kind].model_validate(node)
    except ValidationError as exc:
        for loc, message in translate(exc, _keys_at(CONDITION_MODELS[kind])):
            env.error(join(where, *loc), message)
        return _never
    if kind in ("all", "any", "not"):
        if env.depth >= MAX_CONDITION_DEPTH:
            env.error(where, f"all / any / not nested more than {MAX_CONDITION_DEPTH} levels "
                             f"deep; flatten the condition")
            return _never
        env.depth += 1
        try:
            if kind == "not":
                inner = compile_condition(node["not"], join(where, "not"), env)
                return lambda ctx: not inner(ctx)
            children = [compile_condition(child, join(where, kind, i), env)
                        for i, child in enumerate(node[kind])]
        finally:
            env.depth -= 1
        return _all(children) if kind == "all" else _any(children)
    if kind == "field":
        return _field(spec, where, env)  # type: ignore[arg-type]
    if kind == "count":
        return _count(spec, where, env)  # type: ignore[arg-type]
    if kind == "since":
        return _since(spec, where, env)  # type: ignore[arg-type]
    return _score(spec, where, env)  # type: ignore[arg-type]


def _all(children: list[Condition]) -> Condition:
    if len(children) == 1:
        return children[0]

    def all_of(ctx: RuleInputs) -> bool:
        for child in children:  # noqa: SIM110 - a plain loop is faster than all() on a generator
            if not child(ctx):
                return False
        return True

    return all_of


def _any(children: list[Condition]) -> Condition:
    if len(children) == 1:
        return children[0]

    def any_of(ctx: RuleInputs) -> bool:
        for child in children:  # noqa: SIM110 - a plain loop is faster than any() on a generator
            if child(ctx):
                return True
        return False

    return any_of


def _given(spec: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The operators written in ``spec`` (a null value counts as not written)."""
    return {n: getattr(spec, n) for n in names if getattr(spec, n) is not None}


def _combine(tests: list[Condition]) -> Condition:
    return tests[0] if len(tests) == 1 else _all(tests)


# ------------------------------------------------------------------ field

def same_value(a: Any, b: Any) -> bool:
    """Equality where true is not 1 and 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _fits(value: Any, value_type: str) -> bool:
    if value_type == "any":
        return True
    if value_type == "bool":
        return isinstance(value, bool)
    if value_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if value_type == "text":
        return isinstance(value, str)
    return False


def _field(spec: FieldCondition, where: str, env: Env) -> Condition:
    path = env.path(spec.field, join(where, "field"))
    ops = _given(spec, ("eq", "ne", "gt", "gte", "lt", "lte", "in_", "not_in", "exists",
                        "startswith"))
    if not ops:
        env.error(where, "a field condition needs an operator: eq, ne, gt, gte, lt, lte, in, "
                         "not_in, exists or startswith")
        return _never
    if path is None:
        return _never
    get = path.get
    tests: list[Condition] = []
    for op, expected in ops.items():
        at = join(where, "in" if op == "in_" else op)
        before = len(env.problems)
        _check_operand(path, op, expected, at, env)
        if len(env.problems) > before:
            continue
        tests.append(_field_test(get, op, expected))
    return _combine(tests) if tests else _never


def _check_operand(path: CompiledPath, op: str, expected: Any, at: str, env: Env) -> None:
    value_type = path.value_type
    if value_type == "mapping" and op != "exists":
        env.error(at, f"{path.text} is a lookup entry (a mapping); compare one of its fields, "
                      f"e.g. {path.text}.<field>, or test it with exists")
        return
    if op in _NUMERIC and value_type not in ("number", "any"):
        env.error(at, f"{path.text} is {_VALUE_TYPE_WORDS[value_type]}, not a number")
    elif op == "startswith" and value_type not in ("text", "any"):
        env.error(at, f"{path.text} is {_VALUE_TYPE_WORDS[value_type]}, not text")
    elif op in ("eq", "ne", "in_", "not_in"):
        values = expected if op in ("in_", "not_in") else [expected]
        for value in values:
            if not _fits(value, value_type):
                env.error(at, f"{path.text} is {_VALUE_TYPE_WORDS[value_type]}, "
                              f"so {show(value)} never matches")
                return
        known = _KNOWN_VALUES.get(path.text)
        if known is not None:
            unknown = [v for v in values if v not in known]
            if unknown:
                env.error(at, f"unknown {path.text.split('.')[-1]} {show(unknown[0])} "
                              f"(known: {', '.join(known)})")


def _field_test(get: Getter, op: str, expected: Any) -> Condition:
    if op == "eq":
        if isinstance(expected, str):
            return lambda ctx: get(ctx) == expected  # MISSING is never equal to text
        return lambda ctx: (v := get(ctx)) is not MISSING and same_value(v, expected)
    if op == "ne":
        return lambda ctx: (v := get(ctx)) is not MISSING and not same_value(v, expected)
    if op in _NUMERIC:
        compare = _NUMERIC[op]
        return lambda ctx: (isinstance(v := get(ctx), int | float) and not isinstance(v, bool)
                            and compare(v, expected))
    if op in ("in_", "not_in"):
        inside = op == "in_"
        if all(isinstance(x, str) for x in expected):
            texts = frozenset(expected)
            return lambda ctx: isinstance(v := get(ctx), str) and (v in texts) == inside
        return lambda ctx: (v := get(ctx)) is not MISSING and \
            any(same_value(v, x) for x in expected) == inside
    if op == "exists":
        return lambda ctx: (get(ctx) is not MISSING) == expected
    assert op == "startswith"
    return lambda ctx: isinstance(v := get(ctx), str) and v.startswith(expected)


# ------------------------------------------------------------------ count

def _categories(value: list[str] | LookupKeys | None, at: str, env: Env) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, LookupKeys):
        if value.lookup not in env.lookups:
            known = ", ".join(sorted(env.lookups)) or "none are defined"
            env.error(join(at, "lookup"), f"unknown lookup '{value.lookup}' (lookups: {known})")
            return frozenset()
        return frozenset(env.lookups[value.lookup])
    return frozenset(value)


def _count(spec: CountCondition, where: str, env: Env) -> Condition:
    count = spec.count
    at = join(where, "count")
    ops = _given(spec, ("eq", "gt", "gte", "lt", "lte"))
    if not ops:
        env.error(where, "a count condition needs a comparison: eq, gt, gte, lt or lte")
    if (count.within_s is None) == (not count.session):
        env.error(at, "say which events to count: within_s: <seconds> or session: true "
                      "(one of them)")
    pages = count.event_type == "page_view"
    for key in ("category_in", "category_not_in", "same_category"):
        if getattr(count, key) not in (None, False) and not pages:
            env.error(join(at, key), f"categories are only known for page_view, "
                                     f"not {count.event_type}")
    cats_in = _categories(count.category_in, join(at, "category_in"), env)
    cats_out = _categories(count.category_not_in, join(at, "category_not_in"), env)
    if not (pages and count.session):
        bound = RECENT_PAGES if pages else EVENT_TIMES_PER_TYPE
        need = max([ops.get("gte", 0), ops.get("eq", 0), ops.get("gt", -1) + 1])
        if need > bound:
            env.error(where, f"can never be true: the profile keeps the last {bound} "
                             f"{count.event_type} events, so a count in a time window is at "
                             f"most {bound}")
    getter = count_getter(count.event_type, cats_in, cats_out, count.same_category,
                          None if count.within_s is None else count.within_s * 1000)
    if count.name is not None:
        if count.name in env.counts:
            env.error(join(at, "name"), f"a count named '{count.name}' is already defined in "
                                        f"this rule")
        env.counts[count.name] = getter
    if not ops:
        return _never
    tests: list[Condition] = [
        (lambda ctx, c=operator.eq if op == "eq" else _NUMERIC[op], x=x: c(getter(ctx), x))
        for op, x in ops.items()]
    return _combine(tests)


def count_getter(event_type: str, cats_in: frozenset[str] | None, cats_out: frozenset[str] | None,
                 same_category: bool, within_ms: int | None) -> Getter:
    """How many events of ``event_type`` the profile holds in the window (None: the session).

    Computed once per decision and shared by every rule that counts the same thing.
    """
    key = ("count", event_type, cats_in, cats_out, same_category, within_ms)

    def wanted(category: str | None, own: str | None) -> bool:
        if same_category and (category is None or category != own):
            return False
        if cats_in is not None and category not in cats_in:
            return False
        return not (cats_out is not None and category in cats_out)

    def compute(ctx: RuleInputs) -> int:
        profile, now = ctx.profile, ctx.event.ts
        if event_type == "page_view":
            page = getattr(ctx.event, "page", None)
            own = page.category if page is not None else None
            if within_ms is None:
                return sum(n for category, n in profile.session_topic_views.items()
                           if wanted(category, own))
            start = now - within_ms
            return sum(1 for p in profile.recent_pages
                       if start < p["ts"] <= now and wanted(p.get("category"), own))
        start = profile.session_started_ts - 1 if within_ms is None else now - within_ms
        return queries.count_in_window(profile, event_type, start, now)

    def get(ctx: RuleInputs) -> int:
        cache = ctx.cache
        value = cache.get(key)
        if value is None:
            value = cache[key] = compute(ctx)
        return value

    return get


# ------------------------------------------------------------------ since

def _since(spec: SinceCondition, where: str, env: Env) -> Condition:
    ops = _given(spec, ("gt_s", "gte_s", "lt_s", "lte_s"))
    if not ops:
        env.error(where, "a since condition needs a comparison: gt_s, gte_s, lt_s or lte_s")
    what = spec.since
    if what.startswith("last_action:"):
        action = what.removeprefix("last_action:")
        if not action:
            env.error(join(where, "since"), "name the action: last_action:<action>")
        last = _last_action(action)
    elif what in EVENT_TYPES:
        last = _last_event(what)
    else:
        env.error(join(where, "since"), f"expected an event type ({', '.join(EVENT_TYPES)}) or "
                                        f"last_action:<action>, got {show(what)}")
        return _never
    if not ops:
        return _never
    compare = [(_NUMERIC[op.removesuffix("_s")], x * 1000) for op, x in ops.items()]

    def since(ctx: RuleInputs) -> bool:
        at = last(ctx)
        elapsed = float("inf") if at is None else ctx.event.ts - at
        return all(c(elapsed, x) for c, x in compare)

    return since


def _last_event(event_type: str) -> Callable[[RuleInputs], int | None]:
    def last(ctx: RuleInputs) -> int | None:
        return queries.last_event_ts(ctx.profile, event_type, ctx.event.ts)

    return last


def _last_action(action: str) -> Callable[[RuleInputs], int | None]:
    def last(ctx: RuleInputs) -> int | None:
        return queries.last_action_ts(ctx.profile, action)

    return last


# ------------------------------------------------------------------ score

def _score(spec: ScoreCondition, where: str, env: Env) -> Condition:
    ops = _given(spec, ("gt", "gte", "lt", "lte"))
    if not ops:
        env.error(where, "a score condition needs a comparison: gt, gte, lt or lte")
        return _never
    path = compile_path(f"scores.{spec.score}", lookups=env.lookups)
    get = path.get
    compare = [(_NUMERIC[op], x) for op, x in ops.items()]
    if spec.min_labels:
        intent, needed = spec.score, spec.min_labels

        def experienced_score(ctx: RuleInputs) -> bool:
            value = get(ctx)
            return (value is not MISSING and ctx.score_labels.get(intent, 0) >= needed
                    and all(c(value, x) for c, x in compare))

        return experienced_score
    if len(compare) == 1:
        [(test, threshold)] = compare
        return lambda ctx: (value := get(ctx)) is not MISSING and test(value, threshold)

    def score(ctx: RuleInputs) -> bool:
        value = get(ctx)
        return value is not MISSING and all(c(value, x) for c, x in compare)

    return score


# ------------------------------------------------------------------ analysis

_CATEGORY_LOOKUP = re.compile(r"^lookup\.([A-Za-z_][A-Za-z0-9_-]*)\[\s*event\.page\.category\s*\]"
                              r"(\.[A-Za-z_][A-Za-z0-9_-]*)?$")

def event_types_of(node: Any) -> frozenset[str] | None:
    """The event types a (valid) condition can be true for, or None when any type can.

    Used to index rules by event type, so an event only meets the rules that can fire on it.
    """
    if not isinstance(node, dict):
        return None
    if "all" in node:
        found = [t for t in (event_types_of(c) for c in node["all"]) if t is not None]
        return frozenset.intersection(*found) if found else None
    if "any" in node:
        parts = [event_types_of(c) for c in node["any"]]
        return None if any(p is None for p in parts) else frozenset().union(*parts)  # type: ignore
    return _equal_or_in(node, "event.type")


def _equal_or_in(node: dict, path: str) -> frozenset[str] | None:
    if node.get("field") != path:
        return None
    eq, inside = node.get("eq"), node.get("in")
    if isinstance(eq, str):
        return frozenset([eq])
    if isinstance(inside, list) and all(isinstance(v, str) for v in inside):
        return frozenset(inside)
    return None


def categories_of(node: Any, lookups: Mapping[str, Mapping[str, Any]]) -> frozenset[str] | None:
    """The page categories a (valid) condition can be true for, or None when any can.

    A rule that names its categories (``event.page.category`` ``eq``/``in``, or a lookup entry
    keyed by the category that must exist) can only fire on a page of one of them; rules are
    indexed by it as well.
    """
    if not isinstance(node, dict):
        return None
    if "all" in node:
        found = [c for c in (categories_of(n, lookups) for n in node["all"]) if c is not None]
        return frozenset.intersection(*found) if found else None
    if "any" in node:
        parts = [categories_of(n, lookups) for n in node["any"]]
        return None if any(p is None for p in parts) else frozenset().union(*parts)  # type: ignore
    field_path = node.get("field")
    if isinstance(field_path, str) and node.get("exists") is True:
        match = _CATEGORY_LOOKUP.match(field_path.strip())
        if match and match.group(1) in lookups:
            table = lookups[match.group(1)]
            attr = match.group(2)[1:] if match.group(2) else None
            return frozenset(k for k, v in table.items()
                             if v is not None and (attr is None or (isinstance(v, dict)
                                                                    and v.get(attr) is not None)))
    return _equal_or_in(node, "event.page.category")
