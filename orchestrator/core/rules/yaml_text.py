"""Reading the YAML of a rule file with PyYAML's safe loader, within limits.

The limits are checked while PyYAML composes the node graph, before anything is built from it:
an alias counts as every node it stands for (so aliases of aliases, "billion laughs", are
refused after reading just the file's own text), an alias inside the node it names (a cycle) is
refused, and so are nesting deeper than :data:`~.limits.MAX_YAML_DEPTH` and numbers longer than
:data:`~.limits.MAX_NUMBER_CHARS`. Times stay text (the rules parse them themselves).

PyYAML's own composer and safe constructor run in Python over the parser's events; the events
come from libyaml when PyYAML has it (about four times faster than PyYAML's Python parser),
else from the Python parser: the result is the same.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from orchestrator.core.rules.limits import MAX_NUMBER_CHARS, MAX_YAML_DEPTH, MAX_YAML_NODES

_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_STR_TAG = "tag:yaml.org,2002:str"
#: A place in a file: mapping keys and list indices from the top ("(key)" inside a key).
Place = tuple[str | int, ...]


class NodeBudget:
    """YAML nodes a rule set may still compose (shared by the files of one set)."""

    __slots__ = ("left",)

    def __init__(self, nodes: int = MAX_YAML_NODES) -> None:
        self.left = nodes


class YamlLimitError(yaml.YAMLError):
    """A file over a limit: what, where (its place and 1-based line), and the rule ids seen."""

    def __init__(self, message: str, place: Place, line: int, rule_ids: dict[int, str]) -> None:
        super().__init__(message)
        self.message, self.place, self.line, self.rule_ids = message, place, line, rule_ids


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _SafeLoader(Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """Python's composer and safe constructor over libyaml's events."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml
    _SafeLoader = yaml.SafeLoader  # type: ignore[misc, assignment]


class RuleFileLoader(_SafeLoader):
    """PyYAML's safe loader counting nodes, depth and number sizes as it composes."""

    def __init__(self, text: str, budget: NodeBudget) -> None:
        super().__init__(text)
        self.budget = budget
        self.place: list[str | int | None] = []
        #: rules[i] -> its id, for the rules whose id was read.
        self.rule_ids: dict[int, str] = {}
        self._nodes_of: dict[str, int] = {}  # anchor -> nodes it stands for
        self._open: set[str] = set()  # anchors of nodes being composed
        self._composed = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise self._limit(f"alias *{event.anchor} is inside the node it names (a cycle)",
                                  event.start_mark, extra=_step(parent, index))
            self._count(self._nodes_of.get(event.anchor, 1), event.start_mark)
            return super().compose_node(parent, index)  # an undefined alias is PyYAML's error
        self.place.append(_step(parent, index))
        try:
            if len(self.place) - 1 > MAX_YAML_DEPTH:
                raise self._limit(f"nested more than {MAX_YAML_DEPTH} levels deep",
                                  event.start_mark)
            before = self._composed
            self._count(1, event.start_mark)
            anchor = event.anchor
            if anchor is not None:
                self._open.add(anchor)
            node = super().compose_node(parent, index)
            if anchor is not None:
                self._open.discard(anchor)
                self._nodes_of[anchor] = self._composed - before
            if isinstance(node, ScalarNode):
                self._check_scalar(node)
            return node
        finally:
            self.place.pop()

    def _check_scalar(self, node: ScalarNode) -> None:
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            raise self._limit(f"a number of {len(node.value)} characters; at most "
                              f"{MAX_NUMBER_CHARS} are allowed", node.start_mark)
        place = self.place
        if len(place) == 4 and place[1] == "rules" and isinstance(place[2], int) \
                and place[3] == "id" and node.tag == _STR_TAG:
            self.rule_ids[place[2]] = node.value

    def _count(self, nodes: int, mark: Any) -> None:
        self._composed += nodes
        self.budget.left -= nodes
        if self.budget.left < 0:
            raise self._limit(f"more than {MAX_YAML_NODES} YAML nodes in the rule set, an alias "
                              f"counted as every node it stands for", mark)

    def _limit(self, message: str, mark: Any, extra: str | int | None = None) -> YamlLimitError:
        steps = [s for s in self.place[1:] if s is not None]
        if extra is not None:
            steps.append(extra)
        return YamlLimitError(message, tuple(steps), mark.line + 1, dict(self.rule_ids))


def _step(parent: Node | None, index: Any) -> str | int | None:
    """The place step of a child of ``parent``: its list index, its key, or "(key)"."""
    if parent is None:
        return None
    if isinstance(parent, SequenceNode):
        return index
    if isinstance(parent, MappingNode):
        if index is None:
            return "(key)"
        return index.value if isinstance(index, ScalarNode) else "(key)"
    return None


RuleFileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# What YAML allows in a stream (YAML 1.1 "printable"): no NUL or other control characters, no
# lone surrogates, no U+FFFE / U+FFFF.
_NOT_IN_YAML = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class CharacterProblem:
    """A character YAML does not allow: what, where in the text, and in which node."""

    __slots__ = ("column", "line", "message", "place", "rule_ids")

    def __init__(self, message: str, line: int, column: int) -> None:
        self.message, self.line, self.column = message, line, column
        self.place: Place = ()
        self.rule_ids: dict[int, str] = {}


def character_problem(text: str) -> CharacterProblem | None:
    """The first character YAML does not allow (NUL, other controls), with its line, column and
    (when the rest of the file is valid YAML) the place of the node it is in."""
    bad = _NOT_IN_YAML.search(text)
    if bad is None:
        return None
    position = bad.start()
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    problem = CharacterProblem(f"character U+{ord(bad.group()):04X} is not allowed in YAML "
                               f"(line {line}, column {column})", line, column)
    loader = RuleFileLoader(_NOT_IN_YAML.sub("\ufffd", text), NodeBudget())
    try:
        root = loader.get_single_node()
    except yaml.YAMLError:
        return problem  # not YAML apart from that either: the line says where
    finally:
        loader.dispose()
    if root is not None:
        problem.place = _place_of((line - 1, column - 1), root)
        problem.rule_ids = {i: r for i, r in loader.rule_ids.items() if "\ufffd" not in r}
    return problem


def _place_of(at: tuple[int, int], root: Node) -> Place:
    """The place of the innermost node spanning ``at`` (0-based line and column)."""
    def spans(node: Node) -> bool:
        return (node.start_mark.line, node.start_mark.column) <= at \
            < (node.end_mark.line, node.end_mark.column)

    place: list[str | int] = []
    node = root
    while True:
        children: list[tuple[str | int, Node]] = []
        if isinstance(node, SequenceNode):
            children = list(enumerate(node.value))
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, ScalarNode) else "(key)"
                children += [("(key)", key), (name, value)]
        inner = next(((step, child) for step, child in children if spans(child)), None)
        if inner is None or len(place) > MAX_YAML_DEPTH:
            return tuple(place)
        place.append(inner[0])
        node = inner[1]
