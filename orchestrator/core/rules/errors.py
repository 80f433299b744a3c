"""Errors of a rule set: every problem, each naming the file, the rule and the field."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem: ``file``, the rule id (None outside a rule or when it has no id), the field
    path inside the rule or file (``when.all[1].gte``), and what is wrong."""

    file: str
    rule: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.file]
        if self.rule is not None:
            parts.append(f"rule '{self.rule}'")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


#: Characters of a file name, field or message in an error (the rest is cut): a problem is named
#: in one readable line even when the text it quotes is huge.
MAX_ERROR_TEXT = 1000


class RuleSetError(ValueError):
    """A rule set that cannot be used; ``errors`` lists every problem found, one line each."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors: list[RuleError] = [_short(e) for e in errors]
        super().__init__("\n".join(str(e) for e in self.errors))


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_ERROR_TEXT:
        return text
    return text[:MAX_ERROR_TEXT] + "…"


def _short(error: RuleError) -> RuleError:
    parts = (error.file, error.rule, error.field, error.message)
    if all(p is None or len(p) <= MAX_ERROR_TEXT for p in parts):
        return error
    return replace(error, file=_cut(error.file) or "", rule=_cut(error.rule),
                   field=_cut(error.field), message=_cut(error.message) or "")


def join(where: str, *loc: str | int) -> str:
    """``join("when", "all", 1, "gte") == "when.all[1].gte"``."""
    text = where
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else str(part)
    return text


def show(value: Any) -> str:
    """A value as the author wrote it, short."""
    text = repr(value) if isinstance(value, str) else _yamlish(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _yamlish(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yamlish(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yamlish(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


# Entries pydantic puts into an error's location to say which member of a union failed.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|list\[.*|dict\[.*|literal\[.*|"
                        r"function-.*|constrained-.*|[A-Z][A-Za-z]*(Condition|Spec|Keys))$")


KnownKeys = Sequence[str] | Callable[[tuple], Sequence[str]]


def translate(exc: ValidationError, known_keys: KnownKeys = ()) -> list[tuple[tuple, str]]:
    """Pydantic's errors as (location, message) in the words of a rule author.

    ``known_keys`` (the keys allowed where an unknown key was found, or a function of that
    place) feed "did you mean" hints. The members of a union that all failed at one place
    become one message ("expected text or a number, got [1, 2]").
    """
    grouped: dict[tuple, list[dict[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and _UNION_TAG.match(p)))
        grouped.setdefault(loc, []).append(error)
    result = []
    for loc, errors in grouped.items():
        messages = [_message(e, known_keys) for e in errors]
        if len(messages) > 1:
            wanted = list(dict.fromkeys(m.split(", got ")[0].removeprefix("expected ")
                                        for m in messages if m.startswith("expected ")))
            if wanted:
                messages = [f"expected {' or '.join(wanted)}, got {show(errors[0]['input'])}"]
        result.append((loc, messages[0]))
    return result


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _message(error: dict[str, Any], known_keys: KnownKeys) -> str:
    kind, value = error["type"], error.get("input")
    ctx = {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
    got = f", got {show(value)}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        name = str(loc[-1]) if loc else ""
        keys = known_keys(loc[:-1]) if callable(known_keys) else known_keys
        close = difflib.get_close_matches(name, [k for k in keys if k != name], n=1)
        return "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
    if kind == "string_type":
        return "expected text" + got + (" (quote it)" if isinstance(value, int | float) else "")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "expected a whole number" + got
    if kind in ("float_type", "float_parsing"):
        return "expected a number" + got
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false" + got
    if kind == "list_type":
        return "expected a list" + got
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping" + got
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}" + got
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}" + got
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}" + got
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}" + got
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}" + got
    if kind == "finite_number":
        return "must be a finite number" + got
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters" + got
    if kind == "string_pattern_mismatch":
        return f"{show(value)} is not allowed here (letters, digits, _ and - ; pattern " \
               f"{ctx.get('pattern')})"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"]) + got


def all_model_keys(models: Iterable[type[BaseModel]]) -> list[str]:
    """Every key (alias or field name) of ``models``, for "did you mean" hints."""
    keys: set[str] = set()
    for model in models:
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
    return sorted(keys)
