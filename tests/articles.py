"""Article files for tests: a minimal valid front matter, its variants, and reading them back."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from feedpub.ingest.loader import load
from feedpub.model import Corpus, Problem

MAX_BYTES = 1 << 20
MINIMAL: dict[str, Any] = {
    "title": "A title",
    "webUrl": "https://example.com/a",
    "publishedDateTime": "2020-01-01T00:00:00Z",
    "provider": {"name": "Example", "domain": "example.com"},
}
DROP = object()

WriteArticle = Callable[..., Path]


def front(**fields: Any) -> str:
    """YAML front matter: a minimal valid article with ``fields`` changed (``DROP`` removes a key)."""
    data = {**MINIMAL, **fields}
    return yaml.safe_dump({k: v for k, v in data.items() if v is not DROP}, sort_keys=False, allow_unicode=True)


def wrap(text: str, newline: str = "\n") -> bytes:
    return f"---\n{text.strip()}\n---\nBody.\n".replace("\n", newline).encode("utf-8")


def load_dir(root: Path) -> Corpus:
    return load(root, MAX_BYTES)


def line_of(path: Path, prefix: str) -> int:
    """1-based line of the first line of ``path`` that starts with ``prefix``."""
    for number, line in enumerate(path.read_text("utf-8-sig").splitlines(), 1):
        if line.startswith(prefix):
            return number
    raise AssertionError(f"{prefix!r} not in {path}")


def raw_front(path: Path) -> dict[str, Any]:
    """The front matter as plain YAML sees it (dates as datetimes): the expected values."""
    text = path.read_text("utf-8-sig").replace("\r\n", "\n")
    _, block, _ = text.split("---\n", 2)
    data = yaml.load(block, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert isinstance(data, dict)
    return data


def strings(value: object) -> Iterator[str]:
    """Every text stored anywhere in a (nested) dataclass value."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for spec in dataclasses.fields(value):
            yield from strings(getattr(value, spec.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from strings(item)


def errors(problems: tuple[Problem, ...] | list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
