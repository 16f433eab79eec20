"""Reading one article file into its front-matter mapping.

python-frontmatter finds and splits the block; PyYAML's safe loader (the
libyaml C loader when present) parses it and :mod:`feedpub.ingest.yaml_values` makes the
values, so a value that cannot be read costs only itself. Timestamps are left
as strings so dates get clear, field-named errors from :mod:`feedpub.ingest.validate`,
and the node tree is kept so any problem can name its line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import yaml
from frontmatter.default_handlers import YAMLHandler

from .sanitize import clip, quote
from .yaml_values import Builder, Dropped, Note, UnknownTag, label, paths_to, short_tag

log = logging.getLogger(__name__)

HAVE_LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))
if TYPE_CHECKING:  # both have the safe constructor and resolver API; the stubs know the pure-Python one
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = yaml.CSafeLoader if HAVE_LIBYAML else yaml.SafeLoader
NO_LIBYAML_WARNING = (
    "PyYAML was built without libyaml: loading articles will be about 7x slower. "
    "Install libyaml (Debian: libyaml-dev) and reinstall PyYAML, or use a PyYAML wheel."
)


def warn_if_slow_yaml() -> None:
    """Say loudly, once at start-up, that the C loader is missing."""
    if not HAVE_LIBYAML:
        log.warning(NO_LIBYAML_WARNING)

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# A corpus never needs this many nodes; alias bombs and runaway files do.
MAX_NODES = 1_000_000


class FeedLoader(_BaseLoader):
    """Safe loader that resolves no timestamps: dates are validated by field."""

    # PyYAML reads this per class; the stubs declare it an instance variable, so it cannot be a ClassVar.
    yaml_implicit_resolvers: dict[Any, Any] = {  # noqa: RUF012
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


class SourceError(Exception):
    """The file cannot be read as an article at all."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Source:
    """A front-matter mapping with a way back to the file's line numbers."""

    data: dict[str, Any]
    root: yaml.Node
    first_line: int
    notes: tuple[Note, ...] = ()  # values left out and keys repeated

    def line_of(self, *path: str | int) -> int | None:
        """File line of the value at ``path`` (keys and list indexes), or of its nearest parent."""
        node: yaml.Node = self.root
        for step in path:
            child = _child(node, step)
            if child is None:
                break
            node = child
        return node.start_mark.line + self.first_line


def _child(node: yaml.Node, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(step, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == step:
                return cast(yaml.Node, value)
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        child: yaml.Node = node.value[step]
        return child
    return None


_HANDLER = YAMLHandler()


def read_source(raw: bytes) -> Source:
    """Decode, split and safely parse one file; raise :class:`SourceError` with a reason.

    The file size limit is not checked here: it bounds how much is read (see ``ingest.scan.read_file``).
    """
    if not raw.strip():
        raise SourceError("empty file")
    if b"\x00" in raw:
        raise SourceError("binary file (contains NUL bytes)", raw[: raw.index(b"\x00")].count(b"\n") + 1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SourceError(f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}", line) from None
    if not _HANDLER.detect(text):
        raise SourceError("no YAML front matter: the file must start with a '---' line", 1)
    try:
        front, _body = _HANDLER.split(text)
    except ValueError:
        raise SourceError("front matter never closes: no second '---' line", 1) from None
    first_line = text[: text.index(front)].count("\n") + 1 if front else 2
    return _parse_yaml(front, first_line)


def _parse_yaml(front: str, first_line: int) -> Source:
    loader = FeedLoader(front)
    try:
        _check_size(front, first_line)
        root = loader.get_single_node()
        if root is None:
            raise SourceError("front matter is empty", first_line)
        if "*" in front:  # without an alias token no node is shared: nothing to check
            _check_tree(root, first_line)
        builder = Builder(loader)
        data = builder.build(root)
    except Dropped as exc:
        raise SourceError(f"front matter cannot be read: {exc.reason}", first_line) from None
    except UnknownTag as exc:
        assert root is not None  # tags are constructed only once there is a root
        raise SourceError(_unknown_tag(exc.node, root, first_line), exc.node.start_mark.line + first_line) from None
    except yaml.MarkedYAMLError as exc:
        raise SourceError(*_yaml_reason(exc, first_line)) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {clip(str(exc))}", first_line) from None
    except RecursionError:
        raise SourceError("invalid YAML: nested too deeply", first_line) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        line = root.start_mark.line + first_line
        raise SourceError(f"front matter is a {_yaml_type(data)}, not a mapping of fields", line)
    return Source(data=data, root=root, first_line=first_line, notes=builder.notes(root, first_line))


def _check_size(front: str, first_line: int) -> None:
    """Refuse over MAX_NODES values before any node is built: a node tree costs ~300 bytes a value.

    No YAML text has more than two values per character, so front matter of up
    to MAX_NODES/4 characters holds at most half the cap; longer front matter is
    counted from the parser's events (nothing kept, stopped at the cap).
    """
    if len(front) <= MAX_NODES // 4:
        return
    count = 0
    for event in yaml.parse(front, Loader=FeedLoader):
        if isinstance(event, _VALUE_EVENTS):
            count += 1
            if count > MAX_NODES:
                raise SourceError(f"front matter has more than {MAX_NODES:,} values", first_line)


_VALUE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)


def _unknown_tag(node: yaml.Node, root: yaml.Node, first_line: int) -> str:
    where = label(paths_to(root, {id(node)}).get(id(node), ()))
    tag = quote(short_tag(node.tag))
    return f"invalid YAML: {where or 'front matter'}: could not determine a constructor for the tag {tag}"


def _yaml_reason(exc: yaml.MarkedYAMLError, first_line: int) -> tuple[str, int | None]:
    """PyYAML's problem and context as one sentence, at the problem's line."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + first_line if mark else None
    reason = exc.problem or "invalid YAML"
    if exc.context:
        where = ""
        if exc.context_mark and exc.context_mark.line + first_line != line:
            where = f" (from line {exc.context_mark.line + first_line})"
        reason = f"{exc.context}{where}: {reason}"
    return f"invalid YAML: {clip(reason)}", line


def _check_tree(root: yaml.Node, first_line: int) -> None:
    """Refuse aliased collections (alias bombs) before constructing anything."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        if id(node) in seen:
            raise SourceError(
                "YAML aliases to lists or mappings are not allowed (possible alias bomb)",
                node.start_mark.line + first_line,
            )
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
        else:
            stack.extend(node.value)


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return f"single value ({type(value).__name__})"
