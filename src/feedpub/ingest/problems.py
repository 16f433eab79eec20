"""What parsing one file found wrong: the file's problems, and how a message may show a value.

A message names the field and says why; of a value it quotes at most a short,
escaped prefix, and of anything but text only its kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Problem
from .frontmatter import Source
from .sanitize import quote, unfit_url_character, url_scheme
from .yaml_values import label

MAX_WARNINGS = 50  # per file: past this, one line says how many more there were


class Rejected(Exception):
    """The article cannot be published; the message says why."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass
class Context:
    """One file's source and the problems found so far (warnings capped at MAX_WARNINGS)."""

    path: str
    source: Source
    problems: list[Problem] = field(default_factory=list)
    hidden: int = 0

    def warn(self, message: str, *where: str | int) -> None:
        self.add(Problem(self.path, self.source.line_of(*where), "warning", message))

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_WARNINGS or problem.severity == "error":
            self.problems.append(problem)
        else:
            self.hidden += 1

    def report_notes(self, strict: frozenset[str]) -> None:
        """Values the loader left out, an error when the field is in ``strict``, and keys found twice."""
        for note in self.source.notes:
            where = label(note.path) or "front matter"
            if note.dropped and len(note.path) == 1 and note.path[0] in strict:
                raise Rejected(f"{where}: {note.message}", *note.path)
            self.add(Problem(self.path, note.line, "warning", f"{where}: {note.message}" + "; ignored" * note.dropped))

    def found(self) -> tuple[Problem, ...]:
        if not self.hidden:
            return tuple(self.problems)
        return (*self.problems, Problem(self.path, None, "warning", f"{self.hidden:,} more warnings not shown"))


def show(value: object) -> str:
    """A value as a message may quote it: a short escaped prefix of a text, the kind of anything else."""
    if isinstance(value, str):
        return quote(value)
    if value is None or isinstance(value, (bool, float)) or (type(value) is int and abs(value) < 10**15):
        return repr(value)
    return f"a {type(value).__name__}"


def url_reason(value: object) -> str:
    """Why ``value`` is no absolute http(s) URL."""
    if not isinstance(value, str):
        return f"expected a URL, got {type(value).__name__}"
    scheme = url_scheme(value)
    if scheme and scheme not in ("http", "https"):
        return f"{quote(scheme, 20)[1:-1]}: URLs are not allowed ({quote(value, 60)})"
    unfit = unfit_url_character(value.strip())
    if unfit:
        return f"{unfit} cannot be part of a URL ({quote(value, 60)})"
    return f"not an absolute http(s) URL ({quote(value, 60)})"
