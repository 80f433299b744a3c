"""Payload templates: ``{path|filter|filter:arg}`` placeholders in payload text.

The language is deliberately tiny: a placeholder is a field path (see :mod:`.paths`) followed by
filters; ``{{`` and ``}}`` are literal braces. Filters:

- ``urlencode`` — percent-encode everything but letters, digits and ``_.-~`` (safe='')
- ``lower`` / ``upper`` — change case
- ``default:<text>`` — use ``<text>`` when the value is missing

A placeholder whose value is missing at run time (and has no ``default``) makes the whole
payload fail to render, and the rule does not fire: a half-filled action is never sent.
Templates always render text; other payload values (numbers, true/false, lists, mappings) are
copied as written, with the text inside lists and mappings rendered too.

>>> from orchestrator.core.rules.conditions import Env
>>> env = Env(lookups={})
>>> render = compile_template("/login?return_to={event.page.url|urlencode}", "payload.x", env)
>>> env.problems
[]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from orchestrator.core.rules.conditions import Env
from orchestrator.core.rules.errors import join
from orchestrator.core.rules.paths import MISSING, Getter, RuleInputs

Render = Callable[[RuleInputs], Any]  # returns MISSING when a value is missing
Filter = Callable[[Any], Any]

FILTERS = ("default", "lower", "upper", "urlencode")


class TemplateError(ValueError):
    pass


def _text(value: Any) -> Any:
    if value is MISSING or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return MISSING  # a list or mapping is not rendered into text


def _on_text(function: Callable[[str], str]) -> Filter:
    return lambda value: value if value is MISSING else function(value)


def _default(text: str) -> Filter:
    return lambda value: text if value is MISSING else value


@lru_cache(maxsize=4096)
def _urlencode(text: str) -> str:
    # Pages repeat (a site has far fewer URLs than visits) and quote() is slow pure Python.
    return quote(text, safe="")


def _filter(spec: str) -> Filter:
    name, colon, arg = spec.partition(":")
    name = name.strip()
    if name == "default":
        if not colon:
            raise TemplateError("default needs a value: default:<text>")
        return _default(arg)
    if name not in FILTERS:
        raise TemplateError(f"unknown filter '{name}' (filters: {', '.join(FILTERS)})")
    if colon:
        raise TemplateError(f"the filter {name} takes no argument")
    if name == "urlencode":
        return _on_text(_urlencode)
    return _on_text(str.lower if name == "lower" else str.upper)


def _placeholder(expression: str, where: str, env: Env) -> Render:
    path_text, *filter_specs = expression.split("|")
    if not path_text.strip():
        raise TemplateError("empty placeholder {}; write {{ for a literal brace")
    filters = [_filter(spec) for spec in filter_specs]
    path = env.path(path_text, where, counts=True)
    if path is None:
        raise TemplateError("")  # already reported by env.path
    if path.value_type == "mapping":
        raise TemplateError(f"{path.text} is a lookup entry (a mapping); name one of its fields, "
                            f"e.g. {path.text}.<field>")
    get: Getter = path.get

    def render(ctx: RuleInputs) -> Any:
        value = _text(get(ctx))
        for f in filters:
            value = f(value)
        return value

    return render


def compile_template(text: str, where: str, env: Env) -> Render:
    """Compile one payload text; a problem is recorded in ``env`` at ``where``."""
    parts: list[str | Render] = []
    literal: list[str] = []
    i, n = 0, len(text)
    try:
        while i < n:
            char = text[i]
            if char == "{" and text.startswith("{{", i):
                literal.append("{")
                i += 2
            elif char == "{":
                end = text.find("}", i + 1)
                if end < 0:
                    raise TemplateError(f"'{{' at position {i + 1} is not closed "
                                        f"(write {{{{ for a literal brace)")
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(_placeholder(text[i + 1: end], where, env))
                i = end + 1
            elif char == "}" and text.startswith("}}", i):
                literal.append("}")
                i += 2
            elif char == "}":
                raise TemplateError(f"'}}' at position {i + 1} closes nothing "
                                    f"(write }}}} for a literal brace)")
            else:
                literal.append(char)
                i += 1
    except TemplateError as exc:
        if str(exc):
            env.error(where, str(exc))
        return lambda ctx: MISSING
    if literal:
        parts.append("".join(literal))
    if all(isinstance(p, str) for p in parts):
        constant = "".join(parts)  # type: ignore[arg-type]
        return lambda ctx: constant
    if len(parts) == 1:
        return parts[0]  # type: ignore[return-value]

    def render(ctx: RuleInputs) -> Any:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part(ctx)
                if value is MISSING:
                    return MISSING
                out.append(value)
        return "".join(out)

    return render


def compile_payload(payload: Any, where: str, env: Env) -> Callable[[RuleInputs], Any]:
    """The payload (a mapping whose text may hold templates) as a function of the context.

    The function returns a fresh payload, or MISSING when any placeholder is missing.
    """
    if isinstance(payload, str):
        return compile_template(payload, where, env)
    if isinstance(payload, dict):
        items = [(key, compile_payload(value, join(where, key), env))
                 for key, value in payload.items()]

        def mapping(ctx: RuleInputs) -> Any:
            out = {}
            for key, render in items:
                value = render(ctx)
                if value is MISSING:
                    return MISSING
                out[key] = value
            return out

        return mapping
    if isinstance(payload, list):
        entries = [compile_payload(value, join(where, i), env) for i, value in enumerate(payload)]

        def sequence(ctx: RuleInputs) -> Any:
            out = []
            for render in entries:
                value = render(ctx)
                if value is MISSING:
                    return MISSING
                out.append(value)
            return out

        return sequence
    return lambda ctx: payload  # a number, true/false or null, as written
