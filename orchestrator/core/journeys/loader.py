"""Loading a journey set: YAML documents in, a checked and compiled :class:`JourneySet` out.

Checked like a rule set, with the same code and limits where they are the same: file and set
size, characters, YAML nodes (aliases expanded), nesting and number lengths
(:mod:`orchestrator.core.rules.yaml_text`, :mod:`orchestrator.core.rules.limits`), duplicate
keys, unknown keys, types and ranges, conditions and payload templates
(:mod:`orchestrator.core.rules.conditions`, :mod:`~orchestrator.core.rules.templates`), caps,
one version for all files. On top: journey ids unique across files, step ids unique in a
journey, and every target a *later* step or ``exit`` -- so a journey has no loop and each step
is reached at most once per entry. Every problem is reported, each naming the file, the journey,
the step and the field; nothing but :class:`~orchestrator.core.rules.RuleSetError` leaves
:func:`load_journey_set`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from pydantic import ValidationError

from orchestrator.core.journeys.journeyset import Journey, JourneySet, Step
from orchestrator.core.journeys.model import EXIT, JourneyFileHeader, JourneySpec, SendSpec, StepSpec
from orchestrator.core.rules.conditions import Env, compile_condition
from orchestrator.core.rules.errors import RuleError, RuleSetError, all_model_keys, join, show, translate

# The rule loader's file handling is the journey loader's too: one reading of bytes, sizes,
# characters, YAML limits, duplicate keys and versions for both kinds of file.
from orchestrator.core.rules.loader import (
    duplicate_keys,
    parse_yaml_file,
    read_bytes,
    read_file_set,
    refuse,
    set_version,
)
from orchestrator.core.rules.model import Caps
from orchestrator.core.rules.ruleset import Rule
from orchestrator.core.rules.templates import compile_payload
from orchestrator.core.rules.yaml_text import NodeBudget, character_problem

#: Journeys in a set: every event is checked against the journeys it can enter.
MAX_JOURNEYS = 100

_FILE_KEYS = all_model_keys([JourneyFileHeader])
_EMPTY: Mapping[str, Mapping[str, Any]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class JourneyError(RuleError):
    """A problem of a journey file: the file, the journey (in ``rule``), the step, the field."""

    step: str | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.rule is not None:
            parts.append(f"journey '{self.rule}'")
        if self.step is not None:
            parts.append(f"step '{self.step}'")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


def load_journey_directory(path: Path, lookups: Mapping[str, Mapping[str, Any]] = _EMPTY
                           ) -> JourneySet:
    """Load every ``*.yaml`` of ``path`` (sorted by name) as one journey set, named
    ``journeys/<file name>``; ``lookups`` are the rule set's."""
    path = Path(path)
    try:
        files = sorted(p for p in path.glob("*.yaml") if p.is_file()) if path.is_dir() else None
        prefix = path.resolve().name
    except OSError as exc:
        raise RuleSetError([JourneyError(str(path), None, None, f"cannot be read: {exc}")]) from None
    if files is None:
        raise RuleSetError([JourneyError(str(path), None, None, "not a directory of journey files")])
    if not files:
        raise RuleSetError([JourneyError(str(path), None, None, "no *.yaml journey files in it")])
    documents: dict[str, bytes] = {}
    problems: list[RuleError] = []
    for file in files:
        read = read_bytes(file, f"{prefix}/{file.name}")
        if isinstance(read, RuleError):
            problems.append(read)
        else:
            documents[f"{prefix}/{file.name}"] = read
    if problems:
        raise RuleSetError(problems)
    return load_journey_set(documents, lookups)


def load_journey_set(documents: Mapping[str, str | bytes],
                     lookups: Mapping[str, Mapping[str, Any]] = _EMPTY) -> JourneySet:
    """Check and compile ``documents`` (file name -> YAML text or UTF-8 bytes).

    Raises :class:`RuleSetError` listing every problem, and nothing else.

    >>> journeys = load_journey_set({"journeys/a.yaml": '''
    ... journeys:
    ...   - id: hello
    ...     description: greet, then wait a minute
    ...     entry: {event: [page_view]}
    ...     steps:
    ...       - {id: greet, send: {channel: web, action: greeting}}
    ...       - {id: pause, wait_s: 60}
    ... '''})
    >>> [(j.id, [s.kind for s in j.steps]) for j in journeys.journeys]
    [('hello', ['send', 'wait_s'])]
    """
    try:
        return _load(documents, lookups)
    except RuleSetError:
        raise
    except Exception as exc:  # a defect of the checks: still a refusal, never a crash
        raise RuleSetError([JourneyError("<journey set>", None, None,
                                         f"could not be checked ({type(exc).__name__}: "
                                         f"{str(exc)[:200]}); this is a bug of the journey checks")]
                           ) from exc


def _load(documents: Mapping[str, str | bytes], lookups: Mapping[str, Mapping[str, Any]]) -> JourneySet:
    errors: list[RuleError] = []
    if not isinstance(documents, Mapping) or not documents:
        raise RuleSetError([JourneyError("<journey set>", None, None, "no journey files")])
    texts, files = read_file_set(documents, _read_file, errors)
    total = sum(len(h.journeys) for _, h in files)
    if total > MAX_JOURNEYS:
        errors.append(JourneyError(", ".join(n for n, _ in files), None, "journeys",
                                   f"{total} journeys in the set; at most {MAX_JOURNEYS} are allowed"))
        raise refuse(errors)
    version = set_version(texts, files, errors)  # type: ignore[arg-type]
    journeys: list[Journey] = []
    defined_in: dict[str, str] = {}
    for name, header in files:
        for index, raw in enumerate(header.journeys):
            journey = _compile_journey(name, index, raw, lookups, errors)
            if journey is None:
                continue
            if journey.id in defined_in:
                errors.append(JourneyError(name, journey.id, "id", f"the id is already used by a "
                                                                   f"journey in {defined_in[journey.id]}"))
                continue
            defined_in[journey.id] = name
            journeys.append(journey)
    if not errors and not journeys:
        errors.append(JourneyError(", ".join(sorted(texts)), None, None, "the set has no journeys"))
    if errors:
        raise refuse(errors)
    return JourneySet(version=version, journeys=tuple(journeys),
                      documents=MappingProxyType(dict(sorted(texts.items()))), lookups=lookups)


def _read_file(name: str, text: str, errors: list[RuleError],
               budget: NodeBudget) -> JourneyFileHeader | None:
    bad = character_problem(text)
    if bad is not None:
        errors.append(JourneyError(name, None, join("", *bad.place) or None,
                                   f"not valid YAML: {bad.message}"))
        return None
    parsed = parse_yaml_file(name, text, budget, errors,
                             lambda problem: JourneyError(name, None, None, problem))
    if parsed is None:
        return None
    data, node = parsed
    if not isinstance(data, dict):
        errors.append(JourneyError(name, None, None, "expected a mapping with journeys: [...], got "
                                                     + ("an empty file" if data is None else show(data))))
        return None
    duplicates = list(duplicate_keys(node))
    for path, key, line, first in duplicates:
        journey, step, field = _locate(data, (*path, key))
        errors.append(JourneyError(name, journey, field, f"duplicate key on line {line} (first on "
                                                         f"line {first}); YAML would keep only the last",
                                   step))
    try:
        header = JourneyFileHeader.model_validate(data)
    except ValidationError as exc:
        for loc, message in translate(exc, _FILE_KEYS):
            errors.append(JourneyError(name, None, join("", *loc), message))
        return None
    return None if duplicates else header


def _id_of(raw: Any) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return raw["id"]
    return None


def _locate(data: Any, loc: tuple) -> tuple[str | None, str | None, str]:
    """(journey id, step id, field) of a place in a file."""
    if len(loc) >= 2 and loc[0] == "journeys" and isinstance(loc[1], int):
        raws = data.get("journeys") if isinstance(data, dict) else None
        raw = raws[loc[1]] if isinstance(raws, list) and loc[1] < len(raws) else None
        journey = _id_of(raw)
        if journey is not None:
            step, field = _step_and_field(raw, loc[2:])
            return journey, step, field
    return None, None, join("", *loc)


def _step_and_field(raw: Any, loc: tuple) -> tuple[str | None, str]:
    """(step id, field) of a place inside one journey: inside a step when it has an id."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = raw.get("steps") if isinstance(raw, dict) else None
        step = steps[loc[1]] if isinstance(steps, list) and loc[1] < len(steps) else None
        step_id = _id_of(step)
        if step_id is not None:
            return step_id, join("", *loc[2:])
    return None, join("", *loc)


def _journey_keys(loc: tuple) -> list[str]:
    from orchestrator.core.journeys import model

    models: dict[str, list[type]] = {
        "entry": [model.EntrySpec], "send": [SendSpec], "caps": [Caps],
        "wait_for": [model.WaitForSpec], "branch": [model.BranchSpec], "split": [model.SplitSpec]}
    names = [p for p in loc if isinstance(p, str)]
    if names and names[-1] in models:
        return all_model_keys(models[names[-1]])
    return all_model_keys([StepSpec] if "steps" in names else [JourneySpec])


def _compile_journey(file: str, index: int, raw: Any, lookups: Mapping[str, Mapping[str, Any]],
                     errors: list[RuleError]) -> Journey | None:
    journey_id = _id_of(raw)
    prefix = "" if journey_id is not None else f"journeys[{index}]"

    def report(step: str | None, field: str, message: str) -> None:
        errors.append(JourneyError(file, journey_id, join(prefix, field) if field else prefix or None,
                                   message, step))

    if not isinstance(raw, dict):
        report(None, "", f"a journey is a mapping with id, description, entry and steps; got {show(raw)}")
        return None
    before = len(errors)
    spec: JourneySpec | None = None
    try:
        spec = JourneySpec.model_validate(raw)
    except ValidationError as exc:
        for loc, message in translate(exc, _journey_keys):
            step, field = _step_and_field(raw, loc)
            report(step, field, message)

    def condition(node: Any, step: str | None, where: str) -> Any:
        if node is None:
            return None
        env = Env(lookups=lookups)
        compiled = compile_condition(node, where, env)
        for field, message in env.problems:
            report(step, field, message)
        return compiled

    entry = raw.get("entry") if isinstance(raw.get("entry"), dict) else {}
    entry_condition = condition(entry.get("when"), None, "entry.when")
    goal = condition(raw.get("goal"), None, "goal")
    exit_when = condition(raw.get("exit_when"), None, "exit_when")
    if spec is None:
        return None
    steps = _compile_steps(file, spec, lookups, condition, report)
    if len(errors) > before or steps is None:
        return None
    return Journey(
        id=spec.id, file=file, description=spec.description,
        entry_types=frozenset(spec.entry.event) if spec.entry.event else None,
        entry_condition=entry_condition, goal=goal, exit_when=exit_when, reentry=spec.reentry,
        reentry_after_ms=spec.reentry_after_s * 1000, max_entries=spec.max_entries, steps=steps,
        goal_text=describe_condition(raw["goal"]) if spec.goal is not None else None)


def _compile_steps(file: str, spec: JourneySpec, lookups: Mapping[str, Mapping[str, Any]], condition: Any,
                   report: Any) -> tuple[Step, ...] | None:
    position: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        if step.id == EXIT:
            report(step.id, "id", f"'{EXIT}' is the target that leaves the journey; name the step "
                                  f"otherwise")
        elif step.id in position:
            report(step.id, "id", f"two steps are called '{step.id}' (steps[{position[step.id]}] "
                                  f"and steps[{i}])")
        position.setdefault(step.id, i)
    ids = [s.id for s in spec.steps]
    compiled: list[Step] = []
    ok = True

    def target(i: int, value: str | None, field: str) -> str:
        nonlocal ok
        if value is None:
            return ids[i + 1] if i + 1 < len(ids) else EXIT
        if value == EXIT:
            return EXIT
        at = position.get(value)
        if at is None or at <= i:
            ok = False
            later = ", ".join([*ids[i + 1:], EXIT])
            what = ("this step or an earlier one (journeys do not loop)" if at is not None
                    else "no such step")
            report(ids[i], field, f"'{value}' is {what}; expected one of {later}")
        return value

    for i, step in enumerate(spec.steps):
        kind = step.kind
        if kind == "send":
            rule = _send_rule(file, spec.id, step.id, step.send, lookups, report)  # type: ignore[arg-type]
            ok = ok and rule is not None
            compiled.append(Step(step.id, kind, target(i, step.next, "next"), rule=rule))
        elif kind == "wait_s":
            compiled.append(Step(step.id, kind, target(i, step.next, "next"),
                                 wait_ms=step.wait_s * 1000))  # type: ignore[operator]
        elif kind == "wait_for":
            wait = step.wait_for
            assert wait is not None
            compiled.append(Step(step.id, kind, target(i, wait.then, "wait_for.then"),
                                 other=target(i, wait.on_timeout, "wait_for.on_timeout"),
                                 wait_ms=wait.timeout_s * 1000, events=frozenset(wait.event),
                                 condition=condition(wait.when, step.id, "wait_for.when")))
        elif kind == "branch":
            branch = step.branch
            assert branch is not None
            compiled.append(Step(step.id, kind, target(i, branch.then, "branch.then"),
                                 other=target(i, branch.else_, "branch.else"),
                                 condition=condition(branch.when, step.id, "branch.when")))
        else:
            split = step.split
            assert split is not None
            compiled.append(Step(step.id, kind, target(i, None, "next"),
                                 other=target(i, split.holdout, "split.holdout"),
                                 holdout_percent=split.holdout_percent))
    return tuple(compiled) if ok else None


def _always(ctx: Any) -> bool:
    return True


def _send_rule(file: str, journey_id: str, step_id: str, send: SendSpec,
               lookups: Mapping[str, Mapping[str, Any]], report: Any) -> Rule | None:
    """A send step as a rule that always holds: the arbitration weighs it, applies consent and
    caps, and names it ``journey.<journey>.<step>`` in the action record's ``rule``."""
    env = Env(lookups=lookups)
    render = compile_payload(send.payload, "send.payload", env)
    for field, message in env.problems:
        report(step_id, field, message)
    if env.problems:
        return None
    caps = send.caps
    return Rule(
        id=f"journey.{journey_id}.{step_id}", file=file, description=f"journey {journey_id}, step {step_id}",
        channel=send.channel, action=send.action, value=send.value, priority=send.priority,
        weight=1.0, propensity=None, consent=send.consent, cooldown_ms=caps.cooldown_s * 1000,
        max_per_day=caps.max_per_day, max_per_week=caps.max_per_week,
        stop_after=frozenset(caps.stop_after), cap_per=caps.per, valid_from_ms=None,
        valid_until_ms=None, holdout_percent=0.0, expires_after_ms=send.expires_after_s * 1000,
        event_types=None, categories=None, condition=_always, render_payload=render,
        already_there=None)


_OPERATORS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "in": "in",
              "not_in": "not in", "exists": "exists", "contains": "contains"}


def describe_condition(node: Any) -> str:
    """A condition as a person reads it (``event.type in login, signup``); what has no plain
    form is shown as its JSON."""
    if isinstance(node, dict):
        if "all" in node and len(node) == 1:
            return " and ".join(_bracket(n) for n in node["all"])
        if "any" in node and len(node) == 1:
            return " or ".join(_bracket(n) for n in node["any"])
        if "not" in node and len(node) == 1:
            return f"not {_bracket(node['not'])}"
        if "field" in node and len(node) == 2:
            [(op, value)] = [(k, v) for k, v in node.items() if k != "field"]
            if op in _OPERATORS:
                if op == "exists":
                    return f"{node['field']} {'exists' if value else 'is missing'}"
                shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
                return f"{node['field']} {_OPERATORS[op]} {shown}"
    return orjson.dumps(node).decode()


def _bracket(node: Any) -> str:
    text = describe_condition(node)
    return f"({text})" if " and " in text or " or " in text else text
