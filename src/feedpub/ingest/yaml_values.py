"""Python values from a composed YAML node tree, one value's failure at a time.

PyYAML constructs a document whole: a single value whose tag does not fit it
(``!!int abc``, ``!!map`` on a text, bad base64 under ``!!binary``) raises, and
its errors quote the value. Here each value that cannot be read is left out of
its list or mapping and noted (where, and why, never the value), so one bad
field is that field's problem, not the file's. Duplicate keys are noted too;
as in every YAML loader, the last one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .sanitize import quote

_YAML = "tag:yaml.org,2002:"
_STR, _SEQ, _MAP, _MERGE, _TIMESTAMP = (_YAML + t for t in ("str", "seq", "map", "merge", "timestamp"))
_Scalar, _Sequence, _Mapping = yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode
_KIND = {_Scalar: "single value", _Sequence: "list", _Mapping: "mapping"}
_SCALAR_TAGS = frozenset(_YAML + t for t in ("str", "null", "bool", "int", "float", "binary", "timestamp"))
_COLLECTION_TAGS = frozenset(_YAML + t for t in ("seq", "map", "set", "omap", "pairs"))
# Only so many notes are kept per file: a million bad values must not make a million messages.
MAX_NOTES = 50
# Below a key of this name nothing is ever named or quoted: its keys may be secret too.
OPAQUE = "secured"

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Note:
    """A value left out (``dropped``) or a duplicate key: where, and what happened, without the value."""

    path: Path
    line: int
    message: str
    dropped: bool


class Dropped(Exception):
    """A value that cannot be constructed."""

    def __init__(self, node: yaml.Node, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


class UnknownTag(Exception):
    """A tag the safe loader has no constructor for: the file was written for another program."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__(node.tag)
        self.node = node


def short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML):] if tag.startswith(_YAML) else tag


class Builder:
    """Builds plain strings, lists and mappings directly (the fast path: front matter is almost all
    text) and other values with PyYAML's safe constructors, each failure confined to its value."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.dropped: list[tuple[yaml.Node, str]] = []
        self.duplicates: list[tuple[yaml.Node, yaml.Node]] = []  # (repeated key, its first occurrence)
        self.more = 0  # notes beyond MAX_NOTES

    def build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == _STR and type(node) is _Scalar:
            return node.value
        if tag == _MAP and type(node) is _Mapping:
            return self._mapping(node)
        if tag == _SEQ and type(node) is _Sequence:
            return self._sequence(node)
        return self._other(node, tag)

    def _other(self, node: yaml.Node, tag: str) -> Any:
        kind = type(node)
        if tag == _TIMESTAMP and kind is _Scalar:
            return node.value  # timestamps stay text: dates get clear, field-named errors from parse
        if tag not in self.loader.yaml_constructors:
            raise UnknownTag(node)
        if (tag in _SCALAR_TAGS) is not (kind is _Scalar) or tag in (_MAP, _SEQ):
            raise Dropped(node, f"a {short_tag(tag)} tag on a {_KIND[kind]}")
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception:  # ValueError, KeyError, ConstructorError...: all quote the value
            raise Dropped(node, f"not a valid {short_tag(tag)} value") from None

    def _mapping(self, node: yaml.MappingNode, *, merged: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = {}
        build, dropped, duplicates = self.build, len(self.dropped), len(self.duplicates)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE and not merged:
                del self.dropped[dropped:], self.duplicates[duplicates:]  # pairs before it are built again
                return self._merged(node)
            try:
                key = build(key_node)
                mapping[key] = build(value_node)
            except Dropped as exc:
                self._drop(exc.node, exc.reason)
            except TypeError:
                self._drop(key_node, f"a {_KIND[type(key_node)]} as a key")
        if len(mapping) < len(node.value) and not merged:  # a key was repeated (or a pair left out): find which
            self._find_duplicates(node)
        return mapping

    def _merged(self, node: yaml.MappingNode) -> dict[Any, Any]:
        """A mapping with ``<<`` merge keys: PyYAML merges the nodes, then it is an ordinary mapping
        (whose merged keys are meant to be overridden, so they are not reported as duplicates)."""
        try:
            self.loader.flatten_mapping(node)
        except Exception:  # a merge of something that is not a mapping
            raise Dropped(node, "a merge key (<<) on something that is not a mapping") from None
        return self._mapping(node, merged=True)

    def _sequence(self, node: yaml.SequenceNode) -> list[Any]:
        items = []
        build = self.build
        for child in node.value:
            try:
                items.append(build(child))
            except Dropped as exc:
                self._drop(exc.node, exc.reason)
        return items

    def _drop(self, node: yaml.Node, reason: str) -> None:
        if len(self.dropped) + len(self.duplicates) < MAX_NOTES:
            self.dropped.append((node, reason))
        else:
            self.more += 1

    def _find_duplicates(self, node: yaml.MappingNode) -> None:
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            first = seen.setdefault((key_node.tag, key_node.value), key_node)
            if first is key_node:
                continue
            if len(self.dropped) + len(self.duplicates) < MAX_NOTES:
                self.duplicates.append((key_node, first))
            else:
                self.more += 1

    def notes(self, root: yaml.Node, first_line: int) -> tuple[Note, ...]:
        """What was left out or repeated, in file order, each named by its path from the root."""
        if not self.dropped and not self.duplicates:
            return ()
        paths = paths_to(root, {id(node) for node, _ in self.dropped + self.duplicates})
        notes = [
            Note(paths.get(id(node), ()), node.start_mark.line + first_line, reason, True)
            for node, reason in self.dropped
        ]
        for key, first in self.duplicates:
            notes.append(Note(
                paths.get(id(key), ()), key.start_mark.line + first_line,
                f"duplicate key (first on line {first.start_mark.line + first_line}); the last value is used", False,
            ))
        if self.more:
            notes.append(Note((), first_line, f"{self.more:,} more values left out or keys repeated", True))
        return tuple(sorted(notes, key=lambda note: note.line))


def paths_to(root: yaml.Node, targets: set[int]) -> dict[int, Path]:
    """The path (keys and list indexes) of each node in ``targets``; a key node's path ends with its own key."""
    found: dict[int, Path] = {}
    stack: list[tuple[yaml.Node, Path]] = [(root, ())]
    while stack and len(found) < len(targets):
        node, path = stack.pop()
        if id(node) in targets:
            found.setdefault(id(node), path)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                step = key.value if isinstance(key, yaml.ScalarNode) else "?"
                stack.append((key, (*path, step)))
                stack.append((value, (*path, step)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*path, index)) for index, child in enumerate(node.value))
    return found


def label(path: Path) -> str:
    """``provider.images[0].url`` for a path; odd keys escaped and clipped, nothing below ``secured``."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
            continue
        name = step if step.isidentifier() and len(step) <= 40 else quote(step)
        text = f"{text}.{name}" if text else name
        if step == OPAQUE and text == OPAQUE:
            break
    return text
